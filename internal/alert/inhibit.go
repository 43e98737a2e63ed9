package alert

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/nocsoc/nocsoc/internal/check"
)

// InhibitRule suppresses target alerts while a source alert fires: a firing
// alert matching SourceMatchers mutes every other alert matching
// TargetMatchers whose Equal labels have the same values (a missing label
// equals ""), as in Alertmanager.
type InhibitRule struct {
	Name           string   `yaml:"name" json:"name"`
	SourceMatchers []string `yaml:"source_matchers" json:"source_matchers"`
	TargetMatchers []string `yaml:"target_matchers" json:"target_matchers"`
	Equal          []string `yaml:"equal" json:"equal,omitempty"`
}

// Inhibitor holds compiled inhibit rules and an index of the firing source
// alerts. It is safe for concurrent use.
type Inhibitor struct {
	rules []compiledRule

	mu sync.RWMutex
	// sources[rule][equal values] holds the firing source alerts of a rule
	// by fingerprint, so Inhibited is a map lookup per rule however many
	// alerts fire.
	sources []map[string]*sourceSet
	// byFP remembers where each firing alert was indexed, for Resolve.
	byFP map[string][]sourceRef
}

type compiledRule struct {
	name   string
	source []Matcher
	target []Matcher
	equal  []string
}

// sourceSet is the firing sources of one rule with one set of Equal
// values. The flag says whether the source also matches the rule's
// target matchers; pure counts those that do not.
type sourceSet struct {
	fps  map[string]bool
	pure int
}

type sourceRef struct {
	rule int
	key  string
}

// NewInhibitor compiles rules. Errors are *check.FieldError values naming
// the rule's field, e.g. "inhibit_rules[1].target_matchers[0]".
func NewInhibitor(rules []InhibitRule) (*Inhibitor, error) {
	in := &Inhibitor{byFP: map[string][]sourceRef{}}
	names := map[string]int{}
	for i, r := range rules {
		path := fmt.Sprintf("inhibit_rules[%d]", i)
		if strings.TrimSpace(r.Name) == "" {
			return nil, &check.FieldError{Field: path + ".name", Reason: "is required (it names the rule on suppressed alerts)"}
		}
		if j, dup := names[r.Name]; dup {
			return nil, &check.FieldError{Field: path + ".name", Reason: fmt.Sprintf("duplicate rule name %q (also inhibit_rules[%d])", r.Name, j)}
		}
		names[r.Name] = i
		if len(r.SourceMatchers) == 0 {
			return nil, &check.FieldError{Field: path + ".source_matchers", Reason: "at least one matcher is required"}
		}
		if len(r.TargetMatchers) == 0 {
			return nil, &check.FieldError{Field: path + ".target_matchers", Reason: "at least one matcher is required"}
		}
		src, err := compileMatchers(r.SourceMatchers, path+".source_matchers")
		if err != nil {
			return nil, err
		}
		tgt, err := compileMatchers(r.TargetMatchers, path+".target_matchers")
		if err != nil {
			return nil, err
		}
		for j, l := range r.Equal {
			if !validLabelName(l) {
				return nil, &check.FieldError{Field: fmt.Sprintf("%s.equal[%d]", path, j), Reason: fmt.Sprintf("invalid label name %q", l)}
			}
		}
		in.rules = append(in.rules, compiledRule{name: r.Name, source: src, target: tgt, equal: r.Equal})
		in.sources = append(in.sources, map[string]*sourceSet{})
	}
	return in, nil
}

func (r *compiledRule) key(labels map[string]string) string {
	if len(r.equal) == 0 {
		return ""
	}
	var b strings.Builder
	for _, l := range r.equal {
		b.WriteString(strconv.Quote(labels[l]))
		b.WriteByte(',')
	}
	return b.String()
}

// Fire records a firing alert; when it matches a rule's source matchers it
// inhibits that rule's targets from now on. A resolved alert is forgotten,
// as by Resolve. Firing the same fingerprint again replaces its entry.
func (in *Inhibitor) Fire(a Alert) {
	if a.Status == StatusResolved {
		in.Resolve(a.Fingerprint)
		return
	}
	var refs []sourceRef
	for i := range in.rules {
		r := &in.rules[i]
		if MatchAll(r.source, a.Labels) {
			refs = append(refs, sourceRef{rule: i, key: r.key(a.Labels)})
		}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.remove(a.Fingerprint)
	if len(refs) == 0 {
		return
	}
	for _, ref := range refs {
		r := &in.rules[ref.rule]
		set := in.sources[ref.rule][ref.key]
		if set == nil {
			set = &sourceSet{fps: map[string]bool{}}
			in.sources[ref.rule][ref.key] = set
		}
		alsoTarget := MatchAll(r.target, a.Labels)
		set.fps[a.Fingerprint] = alsoTarget
		if !alsoTarget {
			set.pure++
		}
	}
	in.byFP[a.Fingerprint] = refs
}

// Resolve forgets a source alert: it no longer inhibits anything.
func (in *Inhibitor) Resolve(fingerprint string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.remove(fingerprint)
}

// remove drops fingerprint from the index; the caller holds mu.
func (in *Inhibitor) remove(fp string) {
	refs, ok := in.byFP[fp]
	if !ok {
		return
	}
	delete(in.byFP, fp)
	for _, ref := range refs {
		set := in.sources[ref.rule][ref.key]
		if set == nil {
			continue
		}
		if alsoTarget, ok := set.fps[fp]; ok {
			delete(set.fps, fp)
			if !alsoTarget {
				set.pure--
			}
		}
		if len(set.fps) == 0 {
			delete(in.sources[ref.rule], ref.key)
		}
	}
}

// Sources is the number of firing alerts indexed as inhibition sources.
func (in *Inhibitor) Sources() int {
	in.mu.RLock()
	defer in.mu.RUnlock()
	return len(in.byFP)
}

// Inhibited reports whether a is suppressed, and by which rule (the first
// in config order). A firing source other than a itself, matching the
// rule's source matchers with equal values of the Equal labels, suppresses
// a when a matches the target matchers. As in Alertmanager, an alert that
// matches both sides of a rule is only inhibited by a source that does not
// also match the target side, so two such alerts cannot mute each other.
func (in *Inhibitor) Inhibited(a Alert) (rule string, ok bool) {
	if a.Status == StatusResolved {
		return "", false
	}
	in.mu.RLock()
	defer in.mu.RUnlock()
	for i := range in.rules {
		r := &in.rules[i]
		if len(in.sources[i]) == 0 || !MatchAll(r.target, a.Labels) {
			continue
		}
		set := in.sources[i][r.key(a.Labels)]
		if set == nil {
			continue
		}
		if MatchAll(r.source, a.Labels) {
			if set.pure > 0 {
				return r.name, true
			}
			continue
		}
		for fp := range set.fps {
			if fp != a.Fingerprint {
				return r.name, true
			}
		}
	}
	return "", false
}
