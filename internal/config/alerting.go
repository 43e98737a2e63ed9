package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/notify"
	"github.com/nocsoc/nocsoc/internal/oncall"
)

// Alerting holds the alert pipeline's provisioned settings: the routing
// tree, inhibit rules, notification channels, escalation policies, on-call
// schedules and the runbook directory. Load has compiled the route and the
// inhibit rules, so alert.CompileRoute(Route) and
// alert.NewInhibitor(InhibitRules) cannot fail on a loaded Config.
type Alerting struct {
	Route        alert.RouteConfig   `yaml:"route"`
	InhibitRules []alert.InhibitRule `yaml:"inhibit_rules"`
	// Channels, Policies and Schedules are provisioned (Provisioned set):
	// the API shows them but refuses to change them.
	Channels  []notify.Channel  `yaml:"channels"`
	Policies  []oncall.Policy   `yaml:"policies"`
	Schedules []oncall.Schedule `yaml:"schedules"`
	// RunbooksDir is a directory of markdown runbooks provisioned at start,
	// relative to the working directory unless absolute. Load does not read
	// it; the runbook loader reports its problems.
	RunbooksDir string `yaml:"runbooks_dir"`
}

// Validators the domain packages may offer; asserting them keeps this file
// compiling whether or not a package has one yet.
type (
	plainValidator  interface{ Validate() error }
	policyValidator interface {
		Validate(knownUsers, knownSchedules, knownChannels func(string) bool, policies map[string]*oncall.Policy) error
	}
)

// validate checks the section after decoding. It returns every problem as
// a *check.FieldError whose Field is relative to "alerting", and marks
// channels, policies and schedules provisioned.
func (a *Alerting) validate() []error {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, &check.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	// within re-roots an item's own FieldError below its list entry.
	within := func(prefix string, err error) {
		var fe *check.FieldError
		if errors.As(err, &fe) {
			errs = append(errs, &check.FieldError{Field: prefix + "." + fe.Field, Reason: fe.Reason})
			return
		}
		errs = append(errs, &check.FieldError{Field: prefix, Reason: err.Error()})
	}

	channels := map[string]int{}
	for i := range a.Channels {
		c := &a.Channels[i]
		f := fmt.Sprintf("channels[%d]", i)
		if strings.TrimSpace(c.Name) == "" {
			fail(f+".name", "is required")
			continue
		}
		if v, ok := any(c).(plainValidator); ok {
			if err := v.Validate(); err != nil {
				within(f, err)
				continue
			}
		}
		if j, dup := channels[c.Name]; dup {
			fail(f+".name", "duplicate channel name %q (also channels[%d])", c.Name, j)
			continue
		}
		channels[c.Name] = i
		c.Provisioned = true
	}

	schedules := map[string]int{}
	for i := range a.Schedules {
		s := &a.Schedules[i]
		f := fmt.Sprintf("schedules[%d]", i)
		if strings.TrimSpace(s.Name) == "" {
			fail(f+".name", "is required")
			continue
		}
		if v, ok := any(s).(plainValidator); ok {
			if err := v.Validate(); err != nil {
				within(f, err)
				continue
			}
		}
		if j, dup := schedules[s.Name]; dup {
			fail(f+".name", "duplicate schedule name %q (also schedules[%d])", s.Name, j)
			continue
		}
		schedules[s.Name] = i
		s.Provisioned = true
	}

	// Policies are checked against the whole set: targets must name
	// provisioned schedules and channels (users are not in the file), and
	// "policy" targets must not loop.
	policies := map[string]*oncall.Policy{}
	policyIndex := map[string]int{}
	for i := range a.Policies {
		p := &a.Policies[i]
		if j, dup := policyIndex[p.Name]; dup && p.Name != "" {
			fail(fmt.Sprintf("policies[%d].name", i), "duplicate policy name %q (also policies[%d])", p.Name, j)
			continue
		}
		policyIndex[p.Name] = i
		policies[p.Name] = p
	}
	knownSchedule := func(n string) bool { _, ok := schedules[n]; return ok }
	knownChannel := func(n string) bool { _, ok := channels[n]; return ok }
	for i := range a.Policies {
		p := &a.Policies[i]
		f := fmt.Sprintf("policies[%d]", i)
		if strings.TrimSpace(p.Name) == "" {
			fail(f+".name", "is required")
			continue
		}
		var err error
		switch v := any(p).(type) {
		case policyValidator:
			err = v.Validate(nil, knownSchedule, knownChannel, policies)
		case plainValidator:
			err = v.Validate()
		}
		if err != nil {
			within(f, err)
			continue
		}
		p.Provisioned = true
	}

	if _, err := alert.CompileRoute(a.Route); err != nil {
		errs = append(errs, err)
	} else {
		// Provisioned routes may only name provisioned policies and
		// channels: a file that loads must not depend on what someone
		// created through the API.
		walkRoutes(a.Route, "route", func(rc alert.RouteConfig, path string) {
			if rc.Policy != "" {
				if _, ok := policies[rc.Policy]; !ok {
					fail(path+".policy", "unknown policy %q (define it under alerting.policies)", rc.Policy)
				}
			}
			for i, c := range rc.Channels {
				if !knownChannel(c) {
					fail(fmt.Sprintf("%s.channels[%d]", path, i), "unknown channel %q (define it under alerting.channels)", c)
				}
			}
		})
	}
	if _, err := alert.NewInhibitor(a.InhibitRules); err != nil {
		errs = append(errs, err)
	}
	if a.RunbooksDir != "" && strings.TrimSpace(a.RunbooksDir) == "" {
		fail("runbooks_dir", "must not be blank")
	}
	return errs
}

func walkRoutes(rc alert.RouteConfig, path string, fn func(alert.RouteConfig, string)) {
	fn(rc, path)
	for i, c := range rc.Routes {
		walkRoutes(c, fmt.Sprintf("%s.routes[%d]", path, i), fn)
	}
}
