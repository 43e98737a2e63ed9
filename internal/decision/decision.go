// Package decision owns active-response decisions: what to block (an IP
// address or a CIDR range), where (some endpoints or the whole fleet), why,
// on whose authority and until when. It validates requests against the
// self-lockout guard (an allow-list that can never be blocked) and the
// widest range an operator may block, and renders decisions in CrowdSec's
// LAPI shape for bouncers. Storage lives in internal/store.
package decision

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

// Decision types. CrowdSec bouncers understand "ban" and "captcha".
const (
	TypeBan     = "ban"
	TypeCaptcha = "captcha"
)

// Scopes: a single address or a CIDR range.
const (
	ScopeIP    = "ip"
	ScopeRange = "range"
)

// Origins say on whose authority a decision was made.
const (
	OriginPerson   = "person"
	OriginRule     = "rule"
	OriginIncident = "incident"
)

// Statuses of a decision at a given time.
const (
	StatusActive  = "active"
	StatusExpired = "expired"
	StatusRevoked = "revoked"
)

// DefaultDuration is how long a decision lasts when the request names no
// duration: every block expires.
const DefaultDuration = 4 * time.Hour

// MaxDuration bounds a single decision; a longer block is a firewall rule,
// not a response.
const MaxDuration = 365 * 24 * time.Hour

// Decision is one block (or captcha) of an address or range.
type Decision struct {
	ID    int64  `json:"id"`
	Type  string `json:"type"`
	Scope string `json:"scope"`
	// Value is canonical: an address ("203.0.113.9", "2001:db8::1") or a
	// masked prefix ("203.0.113.0/24").
	Value string `json:"value"`
	// Endpoints are the endpoint IDs that enforce the decision; nil means
	// the whole fleet ("all") unless Labels is set.
	Endpoints []string `json:"endpoints"`
	// Labels, when set, select the enforcing endpoints by label (every
	// one must match). The selector is resolved whenever the decision is
	// enforced, so an endpoint that gains the labels later gets the block
	// and one that loses them has it withdrawn.
	Labels map[string]string `json:"labels,omitempty"`
	Reason string            `json:"reason"`
	Origin string            `json:"origin"`
	// OriginRef names the person, rule or incident behind Origin.
	OriginRef string     `json:"origin_ref,omitempty"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	Until     time.Time  `json:"until"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	RevokedBy string     `json:"revoked_by,omitempty"`
}

// Status reports whether d is active, expired or revoked at now.
func (d Decision) Status(now time.Time) string {
	switch {
	case d.RevokedAt != nil:
		return StatusRevoked
	case !now.Before(d.Until):
		return StatusExpired
	}
	return StatusActive
}

// Active reports whether d is in force at now.
func (d Decision) Active(now time.Time) bool { return d.Status(now) == StatusActive }

// FleetWide reports whether d applies to every endpoint.
func (d Decision) FleetWide() bool { return d.Endpoints == nil && d.Labels == nil }

// AppliesTo reports whether an enforcement point bound to endpoint (empty:
// bound to none) must enforce d, when the endpoint's labels are not
// known: label-scoped decisions then do not apply. Fleet-wide decisions
// apply everywhere.
func (d Decision) AppliesTo(endpoint string) bool { return d.AppliesToEndpoint(endpoint, nil) }

// AppliesToEndpoint reports whether an enforcement point bound to endpoint
// (empty: bound to none), whose labels are labels, must enforce d.
func (d Decision) AppliesToEndpoint(endpoint string, labels map[string]string) bool {
	if d.Labels != nil {
		return endpoint != "" && MatchLabels(d.Labels, labels)
	}
	if d.Endpoints == nil {
		return true
	}
	for _, e := range d.Endpoints {
		if e == endpoint {
			return true
		}
	}
	return false
}

// Prefix returns the decision's value as a prefix (a /32 or /128 for an
// address).
func (d Decision) Prefix() (netip.Prefix, error) {
	if d.Scope == ScopeRange {
		return netip.ParsePrefix(d.Value)
	}
	a, err := netip.ParseAddr(d.Value)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// FieldError names the request field that is wrong and why.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Policy is the self-lockout guard and the limits every decision is
// checked against.
type Policy struct {
	// Allow lists the ranges that can never be blocked.
	Allow []netip.Prefix
	// MinBitsV4 and MinBitsV6 are the shortest prefix lengths accepted
	// (the widest ranges): /16 and /48 by default.
	MinBitsV4, MinBitsV6 int
}

// DefaultPolicy allow-lists loopback (127.0.0.0/8, ::1) and the given
// server addresses, and limits ranges to /16 (IPv4) and /48 (IPv6).
// Invalid and unspecified addresses are skipped, so callers may pass
// whatever their listen address parses to.
func DefaultPolicy(server ...netip.Addr) Policy {
	p := Policy{
		Allow:     []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
		MinBitsV4: 16,
		MinBitsV6: 48,
	}
	for _, a := range server {
		p = p.With(a)
	}
	return p
}

// With returns a copy of p that also allow-lists a (the server's own
// address, the requesting admin's address). Invalid and unspecified
// addresses are ignored.
func (p Policy) With(a netip.Addr) Policy {
	if !a.IsValid() || a.IsUnspecified() {
		return p
	}
	a = a.Unmap()
	allow := make([]netip.Prefix, len(p.Allow), len(p.Allow)+1)
	copy(allow, p.Allow)
	p.Allow = append(allow, netip.PrefixFrom(a, a.BitLen()))
	return p
}

// Request is a decision as asked for, before validation.
type Request struct {
	Type  string `json:"type"`
	Scope string `json:"scope"`
	Value string `json:"value"`
	// Duration is a Go duration ("10m", "4h"); empty means
	// DefaultDuration.
	Duration string `json:"duration"`
	// Endpoints is either the string "all" or an array of endpoint IDs;
	// absent means "all" (unless Labels is given).
	Endpoints json.RawMessage `json:"endpoints"`
	// Labels is a label selector ({"role": "web"}): the endpoints
	// carrying all of them. It excludes Endpoints.
	Labels json.RawMessage `json:"labels,omitempty"`
	Reason string          `json:"reason"`
	// IncidentID, when set, makes the incident the decision's origin.
	IncidentID int64 `json:"incident_id,omitempty"`
}

// Validate checks req against p and returns the decision it asks for,
// starting at now and made by actor (a person unless Origin is set
// afterwards). Errors are *FieldError naming the field.
func (p Policy) Validate(req Request, actor string, now time.Time) (Decision, error) {
	d := Decision{CreatedBy: actor, CreatedAt: now.UTC(), Origin: OriginPerson, OriginRef: actor}
	switch t := strings.ToLower(strings.TrimSpace(req.Type)); t {
	case "":
		d.Type = TypeBan
	case TypeBan, TypeCaptcha:
		d.Type = t
	default:
		return Decision{}, invalid("type", "%q is not a decision type (ban or captcha)", req.Type)
	}
	value := strings.TrimSpace(req.Value)
	if value == "" {
		return Decision{}, invalid("value", "is required (an IP address or a CIDR range)")
	}
	scope := strings.ToLower(strings.TrimSpace(req.Scope))
	if scope == "" {
		scope = ScopeIP
		if strings.Contains(value, "/") {
			scope = ScopeRange
		}
	}
	var pfx netip.Prefix
	switch scope {
	case ScopeIP:
		if strings.Contains(value, "/") {
			return Decision{}, invalid("value", "%q is a CIDR range; use scope \"range\"", value)
		}
		a, err := netip.ParseAddr(value)
		if err != nil || a.Zone() != "" {
			return Decision{}, invalid("value", "%q is not an IP address", value)
		}
		a = a.Unmap()
		pfx = netip.PrefixFrom(a, a.BitLen())
		d.Value = a.String()
	case ScopeRange:
		pr, err := netip.ParsePrefix(value)
		if err != nil {
			return Decision{}, invalid("value", "%q is not a CIDR range like 203.0.113.0/24", value)
		}
		if pr.Addr().Is4In6() {
			pr = netip.PrefixFrom(pr.Addr().Unmap(), pr.Bits()-96)
			if pr.Bits() < 0 {
				return Decision{}, invalid("value", "%q is not a valid IPv4-mapped range", value)
			}
		}
		if m := pr.Masked(); m != pr {
			return Decision{}, invalid("value", "%q has host bits set; did you mean %s?", value, m)
		}
		limit := p.MinBitsV4
		if pr.Addr().Is6() {
			limit = p.MinBitsV6
		}
		if pr.Bits() < limit {
			return Decision{}, invalid("value", "%q is wider than the allowed /%d for %s", value, limit, family(pr.Addr()))
		}
		pfx = pr
		d.Value = pr.String()
	default:
		return Decision{}, invalid("scope", "%q is not a scope (ip or range)", req.Scope)
	}
	d.Scope = scope
	for _, a := range p.Allow {
		if a.Overlaps(pfx) {
			return Decision{}, invalid("value", "%s is allow-listed (covered by %s) and can never be blocked", d.Value, a)
		}
	}

	dur := DefaultDuration
	if s := strings.TrimSpace(req.Duration); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil {
			return Decision{}, invalid("duration", "%q is not a duration like \"10m\" or \"4h\"", req.Duration)
		}
		if v <= 0 {
			return Decision{}, invalid("duration", "%q must be positive: every decision expires", req.Duration)
		}
		if v > MaxDuration {
			return Decision{}, invalid("duration", "%q is longer than the maximum %s", req.Duration, MaxDuration)
		}
		dur = v
	}
	d.Until = d.CreatedAt.Add(dur)

	eps, labels, err := ParseSelector(req.Endpoints, req.Labels)
	if err != nil {
		return Decision{}, err
	}
	d.Endpoints, d.Labels = eps, labels
	d.Reason = strings.TrimSpace(req.Reason)
	if len(d.Reason) > 1024 {
		return Decision{}, invalid("reason", "is longer than 1024 bytes")
	}
	if d.Reason == "" {
		d.Reason = fmt.Sprintf("manual %s by %s", d.Type, actor)
	}
	if req.IncidentID < 0 {
		return Decision{}, invalid("incident_id", "must be positive")
	}
	if req.IncidentID > 0 {
		d.Origin = OriginIncident
		d.OriginRef = fmt.Sprintf("incident:%d", req.IncidentID)
	}
	return d, nil
}

// ParseEndpoints reads the "endpoints" field: "all" or absent means the
// whole fleet (nil); otherwise a non-empty array of distinct endpoint IDs.
func ParseEndpoints(raw json.RawMessage) ([]string, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return nil, nil
	}
	if strings.HasPrefix(s, `"`) {
		var v string
		if err := json.Unmarshal(raw, &v); err != nil || v != "all" {
			return nil, invalid("endpoints", "must be \"all\" or an array of endpoint IDs")
		}
		return nil, nil
	}
	var ids []string
	if err := json.Unmarshal(raw, &ids); err != nil {
		return nil, invalid("endpoints", "must be \"all\" or an array of endpoint IDs")
	}
	if len(ids) == 0 {
		return nil, invalid("endpoints", "is empty; use \"all\" for the whole fleet")
	}
	seen := make(map[string]bool, len(ids))
	for i, id := range ids {
		if strings.TrimSpace(id) == "" {
			return nil, invalid(fmt.Sprintf("endpoints[%d]", i), "is empty")
		}
		if seen[id] {
			return nil, invalid(fmt.Sprintf("endpoints[%d]", i), "%q is listed twice", id)
		}
		seen[id] = true
	}
	return ids, nil
}

// ParseSelector reads the "endpoints" and "labels" fields together: at
// most one may be given. Labels must be a non-empty object of valid
// labels; nil labels and nil endpoints mean the whole fleet.
func ParseSelector(endpoints, labels json.RawMessage) ([]string, map[string]string, error) {
	ls, err := ParseLabels(labels)
	if err != nil {
		return nil, nil, err
	}
	if ls != nil {
		if s := strings.TrimSpace(string(endpoints)); s != "" && s != "null" {
			return nil, nil, invalid("labels", "give either endpoints or labels, not both")
		}
		return nil, ls, nil
	}
	eps, err := ParseEndpoints(endpoints)
	return eps, nil, err
}

// ParseLabels reads a label selector: absent or null is none (nil);
// otherwise a non-empty object of key: value labels, each valid as the
// agent's --label (key [a-z0-9_.-]{1,63}, value 1-128 printable
// characters).
func ParseLabels(raw json.RawMessage) (map[string]string, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, invalid("labels", "must be an object of label keys to values, like {\"role\": \"web\"}")
	}
	if len(m) == 0 {
		return nil, invalid("labels", "is empty: name at least one label (or use endpoints \"all\" for the whole fleet)")
	}
	if len(m) > agentproto.MaxLabels {
		return nil, invalid("labels", "has %d labels; at most %d", len(m), agentproto.MaxLabels)
	}
	for _, k := range agentproto.SortedLabelKeys(m) {
		if err := agentproto.ValidateLabel(k, m[k]); err != nil {
			return nil, invalid("labels."+k, "%v", err)
		}
	}
	return m, nil
}

// MatchLabels reports whether have carries every label of want.
func MatchLabels(want, have map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// DescribeScope says in words where d applies.
func (d Decision) DescribeScope() string {
	switch {
	case d.Labels != nil:
		return "endpoints labelled " + agentproto.FormatLabels(d.Labels)
	case d.Endpoints != nil:
		return strings.Join(d.Endpoints, ", ")
	}
	return "the whole fleet"
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}
