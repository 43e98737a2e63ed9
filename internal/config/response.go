package config

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/nocsoc/nocsoc/internal/check"
)

// Response is the `response:` section: the self-lockout allow-list,
// approval policy, rate limits and automatic responses of detection
// rules (internal/autoresponse).
type Response struct {
	// Allow lists addresses and CIDR ranges that can never be blocked, on
	// top of loopback and the server's own address.
	Allow []string `yaml:"allow"`
	// Servers are the nocsoc server addresses an isolated host keeps
	// talking to; empty means the address of server.public_url's host
	// (when it is an IP address).
	Servers []string `yaml:"servers"`
	// IsolationAllow are admin ranges an isolated host can still reach
	// and be reached from.
	IsolationAllow []string `yaml:"isolation_allow"`
	Approval       Approval `yaml:"approval"`
	// RateLimits bound automatic and requested actions per kind
	// (block_ip, isolate_host, lock_user, kill_process …); missing kinds
	// use the defaults (block_ip 60/1m, isolate_host 1/10m, lock_user
	// 5/10m, kill_process 20/1m).
	RateLimits map[string]RateLimit `yaml:"rate_limits"`
	Repeat     Repeat               `yaml:"repeat"`
	// Rules are automatic responses by detection rule, in addition to
	// (and overriding) a rule's own nocsoc.response metadata.
	Rules []ResponseRule `yaml:"rules"`
	// Reconcile is how often decisions are pushed to and withdrawn from
	// agents (default 1s).
	Reconcile check.Duration `yaml:"reconcile"`
}

// Approval says which actions need an approver.
type Approval struct {
	// Required lists the action kinds (and "fleet_wide" for any action on
	// the whole fleet) that need approval; nil means the default
	// [isolate_host, lock_user, fleet_wide]; an empty list turns approval
	// off.
	Required *[]string `yaml:"required"`
	// Approvers are operators at tier L2 or above; admins always approve.
	Approvers []string `yaml:"approvers"`
	// FourEyes forbids approving one's own request.
	FourEyes bool `yaml:"four_eyes"`
}

// RateLimit allows Count actions per Per.
type RateLimit struct {
	Count int            `yaml:"count"`
	Per   check.Duration `yaml:"per"`
}

// Repeat lengthens blocks of repeat offenders: each earlier automatic
// block of the same address within Window multiplies the duration by
// Factor, up to Max.
type Repeat struct {
	Window check.Duration `yaml:"window"`
	Factor float64        `yaml:"factor"`
	Max    check.Duration `yaml:"max"`
}

// ResponseRule is an automatic response to a detection rule's alerts.
type ResponseRule struct {
	// Rule is the detection rule's id or name.
	Rule string `yaml:"rule"`
	// Action is block_ip, isolate_host, lock_user or kill_process.
	Action string `yaml:"action"`
	// Field is the alert field whose value is blocked or locked
	// (default source.ip for block_ip, user.name for lock_user).
	Field string `yaml:"field"`
	// Duration of a block (default 4h).
	Duration check.Duration `yaml:"duration"`
	// Scope is "host" (the endpoint whose hostname is the event's
	// host.name; the default) or "fleet".
	Scope string `yaml:"scope"`
}

// ResponseKinds are the action kinds the response service knows.
var ResponseKinds = []string{"block_ip", "unblock_ip", "isolate_host", "release_host", "lock_user", "unlock_user", "kill_process"}

func validKind(k string) bool {
	for _, v := range ResponseKinds {
		if v == k {
			return true
		}
	}
	return false
}

func (r Response) validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, &check.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	for i, s := range r.Allow {
		if _, err := ParseAddrOrPrefix(s); err != nil {
			add(fmt.Sprintf("allow[%d]", i), "%v", err)
		}
	}
	for i, s := range r.IsolationAllow {
		if _, err := ParseAddrOrPrefix(s); err != nil {
			add(fmt.Sprintf("isolation_allow[%d]", i), "%v", err)
		}
	}
	for i, s := range r.Servers {
		if a, err := netip.ParseAddr(strings.TrimSpace(s)); err != nil || a.IsUnspecified() {
			add(fmt.Sprintf("servers[%d]", i), "%q is not an IP address", s)
		}
	}
	if r.Approval.Required != nil {
		for i, k := range *r.Approval.Required {
			if k != "fleet_wide" && !validKind(k) {
				add(fmt.Sprintf("approval.required[%d]", i), "%q is not an action kind (%s) or fleet_wide", k, strings.Join(ResponseKinds, ", "))
			}
		}
	}
	for i, u := range r.Approval.Approvers {
		if strings.TrimSpace(u) == "" {
			add(fmt.Sprintf("approval.approvers[%d]", i), "must not be empty")
		}
	}
	for k, l := range r.RateLimits {
		if !validKind(k) {
			add("rate_limits."+k, "%q is not an action kind (%s)", k, strings.Join(ResponseKinds, ", "))
		}
		if l.Count < 0 {
			add("rate_limits."+k+".count", "must not be negative")
		}
		if l.Per <= 0 {
			add("rate_limits."+k+".per", "must be a positive duration")
		}
	}
	if r.Repeat.Window < 0 || r.Repeat.Max < 0 {
		add("repeat", "window and max must not be negative")
	}
	if r.Repeat.Factor != 0 && r.Repeat.Factor < 1 {
		add("repeat.factor", "must be at least 1")
	}
	for i, rr := range r.Rules {
		p := fmt.Sprintf("rules[%d]", i)
		if strings.TrimSpace(rr.Rule) == "" {
			add(p+".rule", "is required (a detection rule id or name)")
		}
		switch rr.Action {
		case "block_ip", "isolate_host", "lock_user", "kill_process":
		default:
			add(p+".action", "%q is not block_ip, isolate_host, lock_user or kill_process", rr.Action)
		}
		switch rr.Scope {
		case "", "host", "fleet":
		default:
			add(p+".scope", "%q is not host or fleet", rr.Scope)
		}
		if rr.Duration < 0 {
			add(p+".duration", "must not be negative")
		}
	}
	if r.Reconcile < 0 {
		add("reconcile", "must not be negative")
	}
	return errs
}

// ParseAddrOrPrefix reads "192.0.2.1" or "192.0.2.0/24" as a prefix.
func ParseAddrOrPrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR range", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR range", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
