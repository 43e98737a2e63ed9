package compliance

import (
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Evaluate runs every check of s over f. A failing check covered by an
// unexpired exception is StatusExcepted and names the exception.
func (s *Set) Evaluate(f *Facts, exceptions []Exception, now time.Time) []Result {
	checks := s.Checks()
	out := make([]Result, 0, len(checks))
	for _, c := range checks {
		out = append(out, c.Evaluate(f, exceptions, now))
	}
	return out
}

// Evaluate runs one check over f.
func (c *Check) Evaluate(f *Facts, exceptions []Exception, now time.Time) Result {
	r := Result{Endpoint: f.Endpoint, Hostname: f.Hostname, Policy: c.Policy, Check: c.ID,
		CollectedAt: f.CollectedAt, EvaluatedAt: now}
	ev := make([]Evidence, 0, 2)
	switch c.test.eval(f, &ev) {
	case pass:
		r.Status = StatusPass
	case fail:
		r.Status = StatusFail
		for _, e := range exceptions {
			if e.Covers(f.Endpoint, c.ID, now) {
				r.Status, r.ExceptionID = StatusExcepted, e.ID
				break
			}
		}
	default:
		r.Status = StatusError
		r.Reason = "facts needed were not collected or could not be read"
	}
	r.Evidence = ev
	return r
}

// Score counts results. Percent is passed over passed+failed+error;
// excepted results are left out (accepted risk is neither pass nor fail).
type Score struct {
	Pass     int     `json:"pass"`
	Fail     int     `json:"fail"`
	Error    int     `json:"error"`
	Excepted int     `json:"excepted"`
	Percent  float64 `json:"percent"`
}

// Add counts one result status.
func (s *Score) Add(status string) {
	switch status {
	case StatusPass:
		s.Pass++
	case StatusFail:
		s.Fail++
	case StatusExcepted:
		s.Excepted++
	default:
		s.Error++
	}
	if n := s.Pass + s.Fail + s.Error; n > 0 {
		s.Percent = float64(int(float64(s.Pass)/float64(n)*1000+0.5)) / 10
	} else {
		s.Percent = 100
	}
}

// Scores summarises results per endpoint, policy, framework and control.
type Scores struct {
	Overall    Score                       `json:"overall"`
	Endpoints  map[string]Score            `json:"endpoints"`
	Policies   map[string]Score            `json:"policies"`
	Frameworks map[string]Score            `json:"frameworks"`
	Controls   map[string]map[string]Score `json:"controls"` // framework → control → score
}

// Score computes scores over results of checks in s.
func (s *Set) Score(results []Result) Scores {
	sc := Scores{Endpoints: map[string]Score{}, Policies: map[string]Score{}, Frameworks: map[string]Score{},
		Controls: map[string]map[string]Score{}}
	bump := func(m map[string]Score, k, st string) {
		v := m[k]
		v.Add(st)
		m[k] = v
	}
	for _, r := range results {
		c, ok := s.byCheck[r.Check]
		if !ok {
			continue
		}
		sc.Overall.Add(r.Status)
		bump(sc.Endpoints, r.Endpoint, r.Status)
		bump(sc.Policies, r.Policy, r.Status)
		for fw, ids := range c.Controls {
			bump(sc.Frameworks, fw, r.Status)
			if sc.Controls[fw] == nil {
				sc.Controls[fw] = map[string]Score{}
			}
			for _, id := range ids {
				bump(sc.Controls[fw], id, r.Status)
			}
		}
	}
	return sc
}

// SortResults orders results by endpoint, then check id.
func SortResults(rs []Result) {
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].Endpoint != rs[j].Endpoint {
			return rs[i].Endpoint < rs[j].Endpoint
		}
		return rs[i].Check < rs[j].Check
	})
}

// EvaluateMany evaluates many endpoints' facts on every CPU; out[i] are
// the results of fs[i].
func (s *Set) EvaluateMany(fs []*Facts, exceptions []Exception, now time.Time) [][]Result {
	out := make([][]Result, len(fs))
	workers := min(runtime.GOMAXPROCS(0), len(fs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(fs) {
					return
				}
				out[i] = s.Evaluate(fs[i], exceptions, now)
			}
		}()
	}
	wg.Wait()
	return out
}
