package decision

import (
	"net/netip"
	"strings"
	"time"
)

// CrowdSecOrigin is the origin bouncers see on every nocsoc decision; a
// bouncer configured with origins: [nocsoc] keeps only these.
const CrowdSecOrigin = "nocsoc"

// CrowdSec is a decision in the shape of CrowdSec LAPI's models.Decision,
// as GET /v1/decisions and /v1/decisions/stream return it.
type CrowdSec struct {
	ID     int64  `json:"id"`
	Origin string `json:"origin"`
	Type   string `json:"type"`
	// Scope is "Ip" or "Range", capitalised as CrowdSec writes it.
	Scope string `json:"scope"`
	Value string `json:"value"`
	// Duration is the time left, as a Go duration ("3h59m58.123s"); for
	// deleted decisions it is zero or negative.
	Duration string `json:"duration"`
	Scenario string `json:"scenario"`
	Until    string `json:"until,omitempty"`
}

// CrowdSecScope maps a nocsoc scope to CrowdSec's spelling.
func CrowdSecScope(scope string) string {
	if scope == ScopeRange {
		return "Range"
	}
	return "Ip"
}

// ToCrowdSec renders d as CrowdSec would at now. Durations are rounded to
// milliseconds, the precision decisions are stored with.
func (d Decision) ToCrowdSec(now time.Time) CrowdSec {
	end := d.Until
	if d.RevokedAt != nil && d.RevokedAt.Before(end) {
		end = *d.RevokedAt
	}
	return CrowdSec{
		ID:       d.ID,
		Origin:   CrowdSecOrigin,
		Type:     d.Type,
		Scope:    CrowdSecScope(d.Scope),
		Value:    d.Value,
		Duration: end.Sub(now).Truncate(time.Millisecond).String(),
		Scenario: d.Reason,
		Until:    end.UTC().Format(time.RFC3339),
	}
}

// Filter selects decisions the way GET /v1/decisions does: every set
// field must match. IP matches decisions covering the address; Range
// matches decisions covering the whole range (CrowdSec's default
// contains=true) or, with Contains false, decisions inside it.
type Filter struct {
	IP       netip.Addr
	Range    netip.Prefix
	Contains bool
	Scope    string // "ip" or "range"
	Value    string
	Type     string
}

// Match reports whether d passes f.
func (f Filter) Match(d Decision) bool {
	if f.Type != "" && !strings.EqualFold(f.Type, d.Type) {
		return false
	}
	if f.Scope != "" && !strings.EqualFold(f.Scope, d.Scope) {
		return false
	}
	if f.Value != "" && f.Value != d.Value {
		return false
	}
	if !f.IP.IsValid() && !f.Range.IsValid() {
		return true
	}
	p, err := d.Prefix()
	if err != nil {
		return false
	}
	if f.IP.IsValid() && !p.Contains(f.IP.Unmap()) {
		return false
	}
	if f.Range.IsValid() {
		if f.Contains {
			// The decision covers the whole asked-for range.
			return p.Bits() <= f.Range.Bits() && p.Contains(f.Range.Addr())
		}
		return f.Range.Bits() <= p.Bits() && f.Range.Contains(p.Addr())
	}
	return true
}
