// Package compliance owns policy checks on endpoints: policy YAML with
// checks mapped to framework controls, their evaluation over the facts
// agents report, scores, and the evidence reports auditors read. It is
// pure computation over values; fleet stores facts and results.
package compliance

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Frameworks whose control ids policies may cite.
const (
	FrameworkCIS  = "cis-debian-12"
	FrameworkPCI  = "pci-dss-4.0"
	FrameworkISO  = "iso27001-2022"
	FrameworkNIST = "nist-csf-2.0"
)

// Frameworks lists the supported frameworks in display order.
func Frameworks() []string {
	return []string{FrameworkCIS, FrameworkPCI, FrameworkISO, FrameworkNIST}
}

// FrameworkTitle is a framework's human name.
func FrameworkTitle(f string) string {
	switch f {
	case FrameworkCIS:
		return "CIS Debian Linux 12 Benchmark"
	case FrameworkPCI:
		return "PCI DSS v4.0"
	case FrameworkISO:
		return "ISO/IEC 27001:2022 Annex A"
	case FrameworkNIST:
		return "NIST Cybersecurity Framework 2.0"
	}
	return f
}

var (
	cisRe  = regexp.MustCompile(`^[1-9][0-9]?(\.[1-9][0-9]?){0,4}$`)
	pciRe  = regexp.MustCompile(`^([1-9]|1[0-2])(\.[1-9][0-9]?){0,3}$`)
	isoRe  = regexp.MustCompile(`^A\.([5-8])\.([1-9][0-9]?)$`)
	nistRe = regexp.MustCompile(`^(GV|ID|PR|DE|RS|RC)\.[A-Z]{2}-(0[1-9]|[1-9][0-9])$`)
)

// ValidateControl checks a control id's format for its framework.
func ValidateControl(framework, id string) error {
	switch framework {
	case FrameworkCIS:
		if !cisRe.MatchString(id) {
			return fmt.Errorf("%s control %q: expected a CIS section number like 5.1.20", framework, id)
		}
	case FrameworkPCI:
		if !pciRe.MatchString(id) {
			return fmt.Errorf("%s control %q: expected a requirement number 1-12 like 8.3.6", framework, id)
		}
		return checkPCI(id)
	case FrameworkISO:
		m := isoRe.FindStringSubmatch(id)
		if m == nil {
			return fmt.Errorf("%s control %q: expected an Annex A control like A.8.5", framework, id)
		}
		if n, _ := strconv.Atoi(m[2]); n > isoControls[m[1]] {
			return fmt.Errorf("%s control %q: theme A.%s has controls 1-%d", framework, id, m[1], isoControls[m[1]])
		}
	case FrameworkNIST:
		if !nistRe.MatchString(id) {
			return fmt.Errorf("%s control %q: expected a subcategory like PR.AA-01", framework, id)
		}
		return checkNIST(id)
	default:
		return fmt.Errorf("unknown framework %q (known: %s)", framework, strings.Join(Frameworks(), ", "))
	}
	return nil
}

// CompareControls orders control ids numerically part by part (5.2.10
// after 5.2.9).
func CompareControls(a, b string) int {
	pa, pb := strings.FieldsFunc(a, splitControl), strings.FieldsFunc(b, splitControl)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		if ea == nil && eb == nil {
			if na != nb {
				return na - nb
			}
			continue
		}
		if c := strings.Compare(pa[i], pb[i]); c != 0 {
			return c
		}
	}
	return len(pa) - len(pb)
}

func splitControl(r rune) bool { return r == '.' || r == '-' }

// Policy is a named set of checks, from one YAML document.
type Policy struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Source      string   `json:"source"` // builtin, directory or api
	File        string   `json:"file"`
	Checks      []*Check `json:"checks"`
	// Raw is the YAML the policy was loaded from.
	Raw string `json:"-"`
}

// Check is one compliance check.
type Check struct {
	ID          string `json:"id"`
	Policy      string `json:"policy"`
	Title       string `json:"title"`
	Rationale   string `json:"rationale,omitempty"`
	Remediation string `json:"remediation,omitempty"`
	Severity    string `json:"severity"`
	// Controls maps a framework to the control ids the check supports.
	Controls map[string][]string `json:"controls"`
	// Test is the condition, as written (for display).
	TestText string `json:"test"`
	Line     int    `json:"line"`
	test     test
}

// Controls of a framework cited by the check, or nil.
func (c *Check) ControlsOf(framework string) []string { return c.Controls[framework] }

// Statuses of a result.
const (
	StatusPass     = "pass"
	StatusFail     = "fail"
	StatusError    = "error"    // the facts needed were not collected or unreadable
	StatusExcepted = "excepted" // failed, but an exception accepts the risk
)

// Evidence is one fact value a test looked at.
type Evidence struct {
	Test     string `json:"test"`
	Subject  string `json:"subject"`
	Observed string `json:"observed"`
	OK       bool   `json:"ok"`
}

// Result is one check's outcome on one endpoint.
type Result struct {
	Endpoint    string     `json:"endpoint"`
	Hostname    string     `json:"hostname,omitempty"`
	Policy      string     `json:"policy"`
	Check       string     `json:"check"`
	Status      string     `json:"status"`
	Reason      string     `json:"reason,omitempty"`
	Evidence    []Evidence `json:"evidence"`
	CollectedAt time.Time  `json:"collected_at"`
	EvaluatedAt time.Time  `json:"evaluated_at"`
	ExceptionID int64      `json:"exception_id,omitempty"`
}

// Exception accepts the risk of a failing check on one endpoint (or all,
// Endpoint "*") until Expires.
type Exception struct {
	ID        int64     `json:"id"`
	Endpoint  string    `json:"endpoint"`
	Check     string    `json:"check"`
	Owner     string    `json:"owner"`
	Reason    string    `json:"reason"`
	Expires   time.Time `json:"expires"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// Covers reports whether e applies to endpoint and check at t.
func (e Exception) Covers(endpoint, check string, t time.Time) bool {
	return e.Check == check && (e.Endpoint == "*" || e.Endpoint == endpoint) && t.Before(e.Expires)
}

// Set is the loaded policies; check ids are unique across a set.
type Set struct {
	Policies []*Policy
	byCheck  map[string]*Check
}

// NewSet builds a set from policies; a policy whose id or a check id
// repeats one already in the set is refused with an error naming it, and
// the others are kept.
func NewSet(policies []*Policy) (*Set, []error) {
	s := &Set{byCheck: map[string]*Check{}}
	var errs []error
	ids := map[string]*Policy{}
	for _, p := range policies {
		if prev, ok := ids[p.ID]; ok {
			errs = append(errs, fmt.Errorf("%s: policy id %q is already defined by %s", p.File, p.ID, prev.File))
			continue
		}
		dup := ""
		for _, c := range p.Checks {
			if prev, ok := s.byCheck[c.ID]; ok {
				dup = fmt.Sprintf("%s:%d: check id %q is already defined by policy %q", p.File, c.Line, c.ID, prev.Policy)
				break
			}
		}
		if dup != "" {
			errs = append(errs, fmt.Errorf("%s", dup))
			continue
		}
		ids[p.ID] = p
		for _, c := range p.Checks {
			s.byCheck[c.ID] = c
		}
		s.Policies = append(s.Policies, p)
	}
	return s, errs
}

// Check returns a check by id.
func (s *Set) Check(id string) (*Check, bool) {
	c, ok := s.byCheck[id]
	return c, ok
}

// Policy returns a policy by id.
func (s *Set) Policy(id string) (*Policy, bool) {
	for _, p := range s.Policies {
		if p.ID == id {
			return p, true
		}
	}
	return nil, false
}

// Checks returns every check, in policy then file order.
func (s *Set) Checks() []*Check {
	var out []*Check
	for _, p := range s.Policies {
		out = append(out, p.Checks...)
	}
	return out
}

// Controls returns the control ids of framework cited by any check,
// sorted.
func (s *Set) Controls(framework string) []string {
	seen := map[string]bool{}
	for _, c := range s.Checks() {
		for _, id := range c.Controls[framework] {
			seen[id] = true
		}
	}
	out := make([]string, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return CompareControls(out[i], out[j]) < 0 })
	return out
}

// Spec returns what agents must collect for the set's checks.
func (s *Set) Spec() FactNeeds {
	n := newNeeds()
	for _, c := range s.Checks() {
		c.test.needs(n)
	}
	return n
}
