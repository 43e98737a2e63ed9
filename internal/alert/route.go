package alert

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

// DefaultGroupWait is the root route's group wait when the config sets
// none (Alertmanager's default).
const DefaultGroupWait = 30 * time.Second

// GroupByAll as the only group_by entry groups by every label.
const GroupByAll = "..."

// RouteConfig is the routing tree as written in the config file or sent to
// the API. Unset fields are inherited from the parent route.
type RouteConfig struct {
	// Matchers select the alerts of this route (Alertmanager syntax); the
	// root route has none and matches everything.
	Matchers []string `yaml:"matchers" json:"matchers,omitempty"`
	// Team (noc or soc) and Origin (natural or human) override the
	// alert's own; empty keeps the alert's.
	Team   string `yaml:"team" json:"team,omitempty"`
	Origin string `yaml:"origin" json:"origin,omitempty"`
	// Policy names the escalation policy; Channels name notification
	// channels.
	Policy   string   `yaml:"policy" json:"policy,omitempty"`
	Channels []string `yaml:"channels" json:"channels,omitempty"`
	// GroupBy lists the labels whose values form a group (one incident);
	// ["..."] groups by every label.
	GroupBy []string `yaml:"group_by" json:"group_by,omitempty"`
	// GroupWait is how long a new group waits for more alerts before its
	// first notification; nil inherits the parent's, and an explicit 0
	// notifies at once.
	GroupWait *check.Duration `yaml:"group_wait" json:"group_wait,omitempty"`
	// Continue keeps matching the following siblings after this route
	// matched.
	Continue bool          `yaml:"continue" json:"continue,omitempty"`
	Routes   []RouteConfig `yaml:"routes" json:"routes,omitempty"`
}

// Route is a compiled routing tree node. It is immutable and safe for
// concurrent use.
type Route struct {
	matchers []Matcher
	cont     bool
	decision Decision
	children []*Route
}

// Decision is what routing decided for an alert: the effective settings of
// one matching route, with unset fields inherited from its ancestors.
// Channels and GroupBy are shared with the route: do not modify them.
type Decision struct {
	// RouteID is the route's path in the tree: "0" for the root, "0.2"
	// for its third child. It is stable as long as the tree is.
	RouteID   string
	Team      string
	Origin    string
	Policy    string
	Channels  []string
	GroupBy   []string
	GroupWait time.Duration
}

// CompileRoute checks and compiles a routing tree. Errors are
// *check.FieldError values whose Field is the path below the route, such
// as "route.routes[2].matchers[0]".
func CompileRoute(rc RouteConfig) (*Route, error) {
	if len(rc.Matchers) > 0 {
		return nil, &check.FieldError{Field: "route.matchers", Reason: "the root route matches every alert and cannot have matchers"}
	}
	if rc.Continue {
		return nil, &check.FieldError{Field: "route.continue", Reason: "the root route cannot have continue set"}
	}
	parent := Decision{GroupWait: DefaultGroupWait}
	return compileRoute(rc, parent, "route", "0")
}

func compileRoute(rc RouteConfig, parent Decision, path, id string) (*Route, error) {
	r := &Route{cont: rc.Continue}
	ms, err := compileMatchers(rc.Matchers, path+".matchers")
	if err != nil {
		return nil, err
	}
	r.matchers = ms
	d := parent
	d.RouteID = id
	if rc.Team != "" {
		if rc.Team != TeamNOC && rc.Team != TeamSOC {
			return nil, &check.FieldError{Field: path + ".team", Reason: fmt.Sprintf("unknown team %q (noc or soc)", rc.Team)}
		}
		d.Team = rc.Team
	}
	if rc.Origin != "" {
		if rc.Origin != OriginNatural && rc.Origin != OriginHuman {
			return nil, &check.FieldError{Field: path + ".origin", Reason: fmt.Sprintf("unknown origin %q (natural or human)", rc.Origin)}
		}
		d.Origin = rc.Origin
	}
	if rc.Policy != "" {
		d.Policy = rc.Policy
	}
	if len(rc.Channels) > 0 {
		seen := map[string]bool{}
		for i, c := range rc.Channels {
			if strings.TrimSpace(c) == "" {
				return nil, &check.FieldError{Field: fmt.Sprintf("%s.channels[%d]", path, i), Reason: "must not be empty"}
			}
			if seen[c] {
				return nil, &check.FieldError{Field: fmt.Sprintf("%s.channels[%d]", path, i), Reason: fmt.Sprintf("duplicate channel %q", c)}
			}
			seen[c] = true
		}
		d.Channels = slices.Clone(rc.Channels)
	}
	if len(rc.GroupBy) > 0 {
		seen := map[string]bool{}
		for i, l := range rc.GroupBy {
			f := fmt.Sprintf("%s.group_by[%d]", path, i)
			switch {
			case l == GroupByAll && len(rc.GroupBy) > 1:
				return nil, &check.FieldError{Field: f, Reason: `"..." (group by every label) must be the only entry`}
			case l != GroupByAll && !validLabelName(l):
				return nil, &check.FieldError{Field: f, Reason: fmt.Sprintf("invalid label name %q", l)}
			case seen[l]:
				return nil, &check.FieldError{Field: f, Reason: fmt.Sprintf("duplicate label %q", l)}
			}
			seen[l] = true
		}
		d.GroupBy = slices.Clone(rc.GroupBy)
	}
	if rc.GroupWait != nil {
		if *rc.GroupWait < 0 {
			return nil, &check.FieldError{Field: path + ".group_wait", Reason: "must not be negative"}
		}
		d.GroupWait = rc.GroupWait.D()
	}
	r.decision = d
	for i, c := range rc.Routes {
		child, err := compileRoute(c, d, fmt.Sprintf("%s.routes[%d]", path, i), id+"."+strconv.Itoa(i))
		if err != nil {
			return nil, err
		}
		r.children = append(r.children, child)
	}
	return r, nil
}

func compileMatchers(ss []string, path string) ([]Matcher, error) {
	var out []Matcher
	for i, s := range ss {
		ms, err := ParseMatchers([]string{s})
		if err != nil {
			return nil, &check.FieldError{Field: fmt.Sprintf("%s[%d]", path, i), Reason: err.Error()}
		}
		out = append(out, ms...)
	}
	return out, nil
}

// Match walks the tree like Alertmanager: depth first, a route matches when
// its matchers do, and the first matching child wins unless it has
// continue set. A route none of whose children match decides itself. The
// root always matches, so there is at least one decision.
func (r *Route) Match(labels map[string]string) []Decision {
	out := r.match(labels, nil)
	if len(out) == 0 {
		// Unreachable for a compiled root, which has no matchers; kept so
		// that the contract holds for any node.
		out = append(out, r.decision)
	}
	return out
}

func (r *Route) match(labels map[string]string, out []Decision) []Decision {
	if !MatchAll(r.matchers, labels) {
		return out
	}
	n := len(out)
	for _, c := range r.children {
		before := len(out)
		out = c.match(labels, out)
		if len(out) > before && !c.cont {
			break
		}
	}
	if len(out) == n {
		out = append(out, r.decision)
	}
	return out
}

// Routes lists every route's decision in tree order, for display.
func (r *Route) Routes() []Decision {
	out := []Decision{r.decision}
	for _, c := range r.children {
		out = append(out, c.Routes()...)
	}
	return out
}

// GroupKey identifies the group an alert joins under d: the route ID and
// the values of the GroupBy labels (every label for "..."), so alerts of
// one group attach to one incident. A missing label counts as "".
func (d Decision) GroupKey(labels map[string]string) string {
	var b strings.Builder
	b.WriteString(d.RouteID)
	b.WriteByte('{')
	names := d.GroupBy
	if len(names) == 1 && names[0] == GroupByAll {
		names = make([]string, 0, len(labels))
		for k := range labels {
			names = append(names, k)
		}
		sort.Strings(names)
	}
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(labels[n]))
	}
	b.WriteByte('}')
	return b.String()
}
