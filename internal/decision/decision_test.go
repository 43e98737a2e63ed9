package decision

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pol := DefaultPolicy(netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("0.0.0.0")).With(netip.MustParseAddr("::ffff:198.51.100.4"))
	for _, c := range []struct {
		name                string
		req                 Request
		scope, value, field string
		until               time.Duration
		endpoints           []string
		origin              string
	}{
		{name: "ip default 4h", req: Request{Value: "203.0.113.9"}, scope: ScopeIP, value: "203.0.113.9", until: 4 * time.Hour, origin: OriginPerson},
		{name: "range inferred", req: Request{Value: "203.0.113.0/24", Duration: "10m"}, scope: ScopeRange, value: "203.0.113.0/24", until: 10 * time.Minute, origin: OriginPerson},
		{name: "mapped ipv4 unmapped", req: Request{Value: "::ffff:203.0.113.9"}, scope: ScopeIP, value: "203.0.113.9", until: 4 * time.Hour, origin: OriginPerson},
		{name: "ipv6 /48 allowed", req: Request{Scope: "Range", Value: "2001:db8:1::/48"}, scope: ScopeRange, value: "2001:db8:1::/48", until: 4 * time.Hour, origin: OriginPerson},
		{name: "endpoints list", req: Request{Value: "203.0.113.9", Endpoints: json.RawMessage(`["ep1","ep2"]`)}, scope: ScopeIP, value: "203.0.113.9", until: 4 * time.Hour, endpoints: []string{"ep1", "ep2"}, origin: OriginPerson},
		{name: "incident origin", req: Request{Value: "203.0.113.9", IncidentID: 7}, scope: ScopeIP, value: "203.0.113.9", until: 4 * time.Hour, origin: OriginIncident},
		{name: "server address", req: Request{Value: "192.0.2.1"}, field: "value"},
		{name: "range covering server", req: Request{Value: "192.0.2.0/24"}, field: "value"},
		{name: "admin address (mapped)", req: Request{Value: "198.51.100.4"}, field: "value"},
		{name: "loopback", req: Request{Value: "127.1.2.3"}, field: "value"},
		{name: "/15 too wide", req: Request{Value: "100.64.0.0/15"}, field: "value"},
		{name: "/47 too wide", req: Request{Value: "2001:db8::/47"}, field: "value"},
		{name: "zone", req: Request{Value: "fe80::1%eth0"}, field: "value"},
		{name: "negative", req: Request{Value: "203.0.113.9", Duration: "-1m"}, field: "duration"},
		{name: "too long", req: Request{Value: "203.0.113.9", Duration: "9000h"}, field: "duration"},
		{name: "empty endpoints", req: Request{Value: "203.0.113.9", Endpoints: json.RawMessage(`[]`)}, field: "endpoints"},
		{name: "duplicate endpoint", req: Request{Value: "203.0.113.9", Endpoints: json.RawMessage(`["a","a"]`)}, field: "endpoints[1]"},
		{name: "long reason", req: Request{Value: "203.0.113.9", Reason: strings.Repeat("x", 1025)}, field: "reason"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := pol.Validate(c.req, "alice", now)
			if c.field != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != c.field {
					t.Fatalf("err = %v, want a FieldError on %q", err, c.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Scope != c.scope || d.Value != c.value || d.Until.Sub(now) != c.until || d.Origin != c.origin || d.Type != TypeBan {
				t.Errorf("got %+v", d)
			}
			if strings.Join(d.Endpoints, ",") != strings.Join(c.endpoints, ",") || (c.endpoints == nil) != (d.Endpoints == nil) {
				t.Errorf("endpoints %v, want %v", d.Endpoints, c.endpoints)
			}
		})
	}
}

func TestStatusAndCrowdSec(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	d := Decision{ID: 3, Type: TypeBan, Scope: ScopeRange, Value: "203.0.113.0/24", Reason: "scan", CreatedAt: t0, Until: t0.Add(time.Hour)}
	got := d.ToCrowdSec(t0.Add(1500 * time.Millisecond))
	want := CrowdSec{ID: 3, Origin: "nocsoc", Type: "ban", Scope: "Range", Value: "203.0.113.0/24", Duration: "59m58.5s", Scenario: "scan", Until: "2026-03-01T13:00:00Z"}
	if got != want {
		t.Errorf("ToCrowdSec = %+v\nwant %+v", got, want)
	}
	for _, c := range []struct {
		at   time.Duration
		want string
	}{{0, StatusActive}, {time.Hour - time.Millisecond, StatusActive}, {time.Hour, StatusExpired}} {
		if s := d.Status(t0.Add(c.at)); s != c.want {
			t.Errorf("Status(+%s) = %s, want %s", c.at, s, c.want)
		}
	}
	rev := t0.Add(time.Minute)
	d.RevokedAt = &rev
	if s := d.Status(t0); s != StatusRevoked {
		t.Errorf("revoked status = %s", s)
	}
}

func TestFilter(t *testing.T) {
	ip := Decision{Type: TypeBan, Scope: ScopeIP, Value: "203.0.113.9"}
	rng := Decision{Type: TypeBan, Scope: ScopeRange, Value: "203.0.113.0/24"}
	for _, c := range []struct {
		name    string
		f       Filter
		ip, rng bool
	}{
		{"empty", Filter{}, true, true},
		{"ip inside range", Filter{IP: netip.MustParseAddr("203.0.113.9")}, true, true},
		{"other ip in range", Filter{IP: netip.MustParseAddr("203.0.113.10")}, false, true},
		{"range contains", Filter{Range: netip.MustParsePrefix("203.0.113.0/25"), Contains: true}, false, true},
		{"range within", Filter{Range: netip.MustParsePrefix("203.0.113.0/24"), Contains: false}, true, true},
		{"scope", Filter{Scope: "ip"}, true, false},
		{"value", Filter{Value: "203.0.113.0/24"}, false, true},
		{"type", Filter{Type: "captcha"}, false, false},
	} {
		if got := c.f.Match(ip); got != c.ip {
			t.Errorf("%s: ip match %v, want %v", c.name, got, c.ip)
		}
		if got := c.f.Match(rng); got != c.rng {
			t.Errorf("%s: range match %v, want %v", c.name, got, c.rng)
		}
	}
}

// TestLabelSelector: labels are a third scope, exclusive with endpoints;
// empty or malformed selectors are refused naming the field.
func TestLabelSelector(t *testing.T) {
	p := DefaultPolicy()
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	d, err := p.Validate(Request{Value: "203.0.113.9", Labels: []byte(`{"role":"web","env":"prod"}`)}, "alice", now)
	if err != nil {
		t.Fatal(err)
	}
	if d.Endpoints != nil || len(d.Labels) != 2 || d.FleetWide() {
		t.Fatalf("decision = %+v", d)
	}
	for _, c := range []struct {
		labels   map[string]string
		endpoint string
		want     bool
	}{
		{map[string]string{"role": "web", "env": "prod", "x": "y"}, "e1", true},
		{map[string]string{"role": "web"}, "e1", false},
		{map[string]string{"role": "web", "env": "prod"}, "", false}, // unbound bouncer
	} {
		if got := d.AppliesToEndpoint(c.endpoint, c.labels); got != c.want {
			t.Errorf("AppliesToEndpoint(%q, %v) = %v, want %v", c.endpoint, c.labels, got, c.want)
		}
	}
	if d.AppliesTo("e1") {
		t.Error("a label-scoped decision applied without knowing the labels")
	}
	for _, c := range []struct {
		eps, labels, field string
	}{
		{`["e1"]`, `{"role":"web"}`, "labels"},
		{`"all"`, `{"role":"web"}`, "labels"},
		{``, `{}`, "labels"},
		{``, `["role"]`, "labels"},
		{``, `{"Role":"web"}`, "labels.Role"},
		{``, `{"role":""}`, "labels.role"},
		{``, `{"role":"a\u0007b"}`, "labels.role"},
	} {
		_, err := p.Validate(Request{Value: "203.0.113.9", Endpoints: []byte(c.eps), Labels: []byte(c.labels)}, "alice", now)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("endpoints %s labels %s: %v, want a FieldError on %s", c.eps, c.labels, err, c.field)
		}
	}
}
