package noc

import (
	"context"
	"net"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/monitor"
)

// Host root causes: a check's target host can be a machine that the fleet
// knows (an endpoint running the agent). While that endpoint is
// unresponsive, the check's failure is its symptom, as a child's is its
// parent's under depends_on: the check's alert opens labelled
// root_cause=endpoint:<hostname> and suppressed ("root_cause:endpoint:…",
// kept and visible, paging nobody), an alert already paging is resolved
// with reason "root cause: endpoint … is unresponsive" and re-opened that
// way. While the endpoint has missed a heartbeat but is not yet declared
// unresponsive, the check's page is held until the verdict is due. When
// the endpoint is back, the attribution ends: the suppressed alert
// resolves and the check's next failing result pages as usual.

// HostRootCauser answers for a check's target host (the fleet service).
type HostRootCauser interface {
	HostRootCause(ctx context.Context, host string, at time.Time) (rootCause string, holdUntil time.Time, err error)
}

// LabelRootCause is the label attributed check alerts carry.
const LabelRootCause = "root_cause"

type hostCause struct {
	mu         sync.Mutex
	causer     HostRootCauser
	attributed map[string]string    // check → root cause
	held       map[string]time.Time // check → hold until
}

// SetHostRootCauser installs the source of host root causes (nil removes
// it).
func (s *Service) SetHostRootCauser(h HostRootCauser) {
	s.hostRC.mu.Lock()
	s.hostRC.causer = h
	s.hostRC.mu.Unlock()
}

// CheckHost returns the host a check reaches: the URL's host for http,
// the host of host:port for tcp, tls and smtp, the target of icmp, the
// resolver's host for dns; "" for push and other kinds.
func CheckHost(spec check.Spec) string {
	t := strings.TrimSpace(spec.Target)
	switch spec.Type {
	case check.TypeHTTP:
		u, err := url.Parse(t)
		if err != nil {
			return ""
		}
		return strings.ToLower(u.Hostname())
	case check.TypeTCP, check.TypeTLS, check.TypeSMTP:
		if h, _, err := net.SplitHostPort(t); err == nil {
			return strings.ToLower(h)
		}
		return strings.ToLower(strings.Trim(t, "[]"))
	case check.TypeICMP:
		return strings.ToLower(strings.Trim(t, "[]"))
	case check.TypeDNS:
		if spec.DNS != nil && spec.DNS.Resolver != "" {
			if h, _, err := net.SplitHostPort(spec.DNS.Resolver); err == nil {
				return strings.ToLower(h)
			}
		}
	}
	return ""
}

// attribution decides what happens to check's alert at now: rc is the
// root cause to attribute it to, hold says to hold the page for now.
func (s *Service) attribution(ctx context.Context, spec check.Spec, now time.Time) (rc string, hold bool) {
	s.hostRC.mu.Lock()
	c := s.hostRC.causer
	s.hostRC.mu.Unlock()
	host := CheckHost(spec)
	if c == nil || host == "" {
		return "", false
	}
	rc, until, err := c.HostRootCause(ctx, host, now)
	if err != nil {
		s.log.Warn("host root cause", "check", spec.Name, "host", host, "err", err)
		return "", false
	}
	s.hostRC.mu.Lock()
	defer s.hostRC.mu.Unlock()
	if rc == "" && until.After(now) {
		if s.hostRC.held == nil {
			s.hostRC.held = map[string]time.Time{}
		}
		if _, was := s.hostRC.held[spec.Name]; !was {
			s.log.Info("alert held until the endpoint's heartbeat verdict", "check", spec.Name, "host", host, "until", until)
		}
		s.hostRC.held[spec.Name] = until
		return "", true
	}
	delete(s.hostRC.held, spec.Name)
	return rc, false
}

// applyAttribution fills in a's root cause, or ends an attribution that
// no longer holds (resolving the suppressed alert first, so that the new
// one pages). It reports false when the alert must be held.
func (s *Service) applyAttribution(ctx context.Context, spec check.Spec, a *alert.Alert, now time.Time) bool {
	rc, hold := s.attribution(ctx, spec, now)
	if hold {
		return false
	}
	s.hostRC.mu.Lock()
	prev := s.hostRC.attributed[spec.Name]
	if rc != "" {
		if s.hostRC.attributed == nil {
			s.hostRC.attributed = map[string]string{}
		}
		s.hostRC.attributed[spec.Name] = rc
	} else {
		delete(s.hostRC.attributed, spec.Name)
	}
	s.hostRC.mu.Unlock()
	if rc == "" {
		if prev != "" {
			s.resolveAlert(ctx, spec.Name, "root cause "+prev+" is gone")
		}
		return true
	}
	a.Labels[LabelRootCause] = rc
	a.SuppressedBy = "root_cause:" + rc
	a.Description = "root cause: " + rc + " is unresponsive; " + a.Description
	return true
}

// releaseHostHeld opens the held check alerts whose hold has ended.
func (s *Service) releaseHostHeld(ctx context.Context) {
	s.hostRC.mu.Lock()
	if len(s.hostRC.held) == 0 {
		s.hostRC.mu.Unlock()
		return
	}
	now := s.now()
	var due []string
	for n, until := range s.hostRC.held {
		if !now.Before(until) {
			due = append(due, n)
		}
	}
	s.hostRC.mu.Unlock()
	sort.Strings(due)
	for _, n := range due {
		s.reopen(ctx, n)
	}
}

// reopen opens (or re-decides) a down check's alert from its live status.
func (s *Service) reopen(ctx context.Context, name string) {
	st, ok := s.tracker.Status(name)
	if !ok || st.State != check.StateDown || !st.Alerting {
		s.hostRC.mu.Lock()
		delete(s.hostRC.held, name)
		s.hostRC.mu.Unlock()
		return
	}
	s.openAlert(ctx, monitor.Outcome{Check: name, Result: st.LastResult, State: st.State, Reason: "down"})
}

// checksOn returns the checks whose target is one of hosts.
func (s *Service) checksOn(hosts []string) []string {
	want := map[string]bool{}
	for _, h := range hosts {
		want[strings.ToLower(h)] = true
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for n, spec := range s.specs {
		h := CheckHost(spec)
		if h == "" {
			continue
		}
		short, _, _ := strings.Cut(h, ".")
		if want[h] || (net.ParseIP(h) == nil && want[short]) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// AttributeHost attributes the open alerts of the checks on hosts to
// rootCause (an endpoint went unresponsive): held pages open attributed,
// paging alerts resolve and re-open attributed.
func (s *Service) AttributeHost(ctx context.Context, rootCause string, hosts []string) {
	for _, n := range s.checksOn(hosts) {
		st, ok := s.tracker.Status(n)
		if !ok || st.State != check.StateDown || !st.Alerting {
			continue
		}
		s.hostRC.mu.Lock()
		already := s.hostRC.attributed[n] == rootCause
		_, held := s.hostRC.held[n]
		s.hostRC.mu.Unlock()
		if already {
			continue
		}
		if !held && !s.isHeld(n) {
			s.resolveAlert(ctx, n, "root cause: "+rootCause+" is unresponsive")
		}
		s.reopen(ctx, n)
	}
}

// ReleaseHost ends the attribution to rootCause (the endpoint is back):
// the suppressed alerts resolve; a check still failing pages on its next
// result.
func (s *Service) ReleaseHost(ctx context.Context, rootCause string, hosts []string) {
	s.hostRC.mu.Lock()
	var names []string
	for n, rc := range s.hostRC.attributed {
		if rc == rootCause {
			names = append(names, n)
			delete(s.hostRC.attributed, n)
		}
	}
	s.hostRC.mu.Unlock()
	sort.Strings(names)
	for _, n := range names {
		s.resolveAlert(ctx, n, "root cause "+rootCause+" is back")
	}
}
