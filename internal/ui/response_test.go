package ui

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/decision"
	"github.com/nocsoc/nocsoc/internal/store"
)

func (f *fleetEnv) decisions(t *testing.T, history bool) []decision.Decision {
	t.Helper()
	ds, err := f.st.ListDecisions(context.Background(), time.Now(), history, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func TestDecisionPagesForEveryRole(t *testing.T) {
	e := newFleetEnv(t)
	ctx := context.Background()
	now := time.Now().UTC()
	d, err := e.st.CreateDecision(ctx, store.Actor{Name: "operator"}, decision.Decision{Type: "ban", Scope: "ip", Value: "198.51.100.4",
		Endpoints: []string{e.web1}, Reason: "scanner", Origin: decision.OriginPerson, OriginRef: "operator", CreatedAt: now, Until: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.CreateDecision(ctx, store.Actor{Name: "operator"}, decision.Decision{Type: "ban", Scope: "ip", Value: "198.51.100.5",
		Reason: "old scanner", Origin: decision.OriginPerson, CreatedAt: now.Add(-2 * time.Hour), Until: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, role := range auth.Roles {
		t.Run(role, func(t *testing.T) {
			c, csrf := e.login(role, passwords[role])
			resp, body := e.get(c, "/decisions")
			if resp.StatusCode != 200 {
				t.Fatalf("GET /decisions: %d", resp.StatusCode)
			}
			assertSafeHTML(t, "/decisions", body)
			for _, s := range []string{"198.51.100.4", ">web1<", "scanner", "198.51.100.5", "expired"} {
				if !strings.Contains(body, s) {
					t.Errorf("/decisions lacks %q", s)
				}
			}
			op := role != auth.RoleViewer
			if got := strings.Contains(body, `id="new-decision"`); got != op {
				t.Errorf("new-decision form shown = %v", got)
			}
			if got := strings.Contains(body, `class="btn sm revoke"`); got != op {
				t.Errorf("revoke button shown = %v", got)
			}
			if !op {
				// A viewer's POSTs are refused and change nothing.
				if resp, _ := e.post(c, "/decisions", url.Values{"csrf": {csrf}, "value": {"198.51.100.9"}}); resp.StatusCode != http.StatusForbidden {
					t.Errorf("viewer create: %d", resp.StatusCode)
				}
				if resp, _ := e.post(c, "/decisions/"+itoa(d.ID)+"/revoke", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusForbidden {
					t.Errorf("viewer revoke: %d", resp.StatusCode)
				}
				if n := len(e.decisions(t, false)); n != 1 {
					t.Errorf("after viewer POSTs: %d active decisions", n)
				}
			}
		})
	}
}

func TestDecisionActions(t *testing.T) {
	e := newFleetEnv(t)
	c, csrf := e.login(auth.RoleOperator, passwords[auth.RoleOperator])
	form := func(kv ...string) url.Values {
		v := url.Values{"csrf": {csrf}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	// Bad input: each refused with the field named, nothing stored.
	bad := []struct {
		name string
		form url.Values
		has  string
	}{
		{"no value", form("value", ""), "value: is required"},
		{"not an address", form("value", "example.com"), "is not an IP address"},
		{"too wide", form("value", "10.0.0.0/8"), "wider than the allowed /16"},
		{"allow-listed", form("value", "127.0.0.1"), "allow-listed"},
		{"bad duration", form("value", "198.51.100.7", "duration", "forever"), "duration:"},
		{"unknown endpoint", form("value", "198.51.100.7", "endpoints", "nope"), "no enrolled endpoint"},
		{"unknown alert", form("alert", "999"), "alert: no alert 999"},
	}
	for _, tc := range bad {
		resp, body := e.post(c, "/decisions", tc.form)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, tc.has) {
			t.Errorf("%s: status %d, has %q = %v\n%.300s", tc.name, resp.StatusCode, tc.has, strings.Contains(body, tc.has), body)
		}
	}
	if n := len(e.decisions(t, false)); n != 0 {
		t.Fatalf("refused requests stored %d decisions", n)
	}
	if resp, _ := e.post(c, "/decisions", url.Values{"value": {"198.51.100.7"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("create without csrf: %d", resp.StatusCode)
	}

	// The form: a hostname names the endpoint.
	resp, _ := e.post(c, "/decisions", form("value", "198.51.100.7", "duration", "30m", "endpoints", "web1", "reason", "port scan"))
	if flash, msg := e.flashOf(c, resp); !strings.Contains(flash, "ban 198.51.100.7 on "+e.web1) || msg != "" {
		t.Errorf("create: flash %q, error %q", flash, msg)
	}
	ds := e.decisions(t, false)
	if len(ds) != 1 || ds[0].Reason != "port scan" || ds[0].CreatedBy != "operator" || len(ds[0].Endpoints) != 1 || ds[0].Endpoints[0] != e.web1 ||
		ds[0].Until.Sub(ds[0].CreatedAt) != 30*time.Minute {
		t.Fatalf("decisions = %+v", ds)
	}

	// "Block IP" on an alert: the address from source.ip, the endpoint
	// from host.name, the reason from the alert, a note on its incident.
	out := e.fire("SSH brute force", "soc", "high", map[string]string{"source.ip": "203.0.113.7", "host.name": "web1"})
	_, body := e.get(c, "/soc")
	if !strings.Contains(body, `name="alert" value="`+itoa(out.AlertID)+`" formaction="/decisions"`) {
		t.Errorf("queue lacks the block button of alert %d", out.AlertID)
	}
	resp, _ = e.post(c, "/decisions", form("alert", itoa(out.AlertID), "back", "/soc"))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/soc" {
		t.Fatalf("block from alert: %d → %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	ds = e.decisions(t, false)
	if len(ds) != 2 {
		t.Fatalf("decisions = %+v", ds)
	}
	blk := ds[1]
	if blk.Value != "203.0.113.7" || blk.Endpoints[0] != e.web1 || !strings.Contains(blk.Reason, "SSH brute force") ||
		blk.Origin != decision.OriginIncident || blk.Until.Sub(blk.CreatedAt) != decision.DefaultDuration {
		t.Errorf("block from alert = %+v", blk)
	}
	_, body = e.get(c, "/incidents/"+itoa(out.IncidentID))
	if !strings.Contains(body, "Active response: Decision "+itoa(blk.ID)) {
		t.Errorf("incident timeline lacks the decision")
	}
	if !strings.Contains(body, `<button class="btn block-ip" type="submit">Block 203.0.113.7</button>`) {
		t.Errorf("incident page lacks the block button")
	}
	// A refused button comes back to its page with the reason.
	noIP := e.fire("Disk full", "noc", "high", map[string]string{"host": "db1"})
	resp, _ = e.post(c, "/decisions", form("alert", itoa(noIP.AlertID), "back", "/soc"))
	if _, msg := e.flashOf(c, resp); !strings.Contains(msg, "has no source.ip label") {
		t.Errorf("block without source.ip: %q", msg)
	}

	// Revoke, then revoke again.
	resp, _ = e.post(c, "/decisions/"+itoa(blk.ID)+"/revoke", form())
	if flash, _ := e.flashOf(c, resp); !strings.Contains(flash, "revoked") {
		t.Errorf("revoke: %q", flash)
	}
	resp, _ = e.post(c, "/decisions/"+itoa(blk.ID)+"/revoke", form())
	if _, msg := e.flashOf(c, resp); !strings.Contains(msg, "already revoked") {
		t.Errorf("second revoke: %q", msg)
	}
	if resp, _ := e.post(c, "/decisions/99999/revoke", form()); resp.StatusCode != http.StatusNotFound {
		t.Errorf("revoke unknown: %d", resp.StatusCode)
	}
	if n := len(e.decisions(t, false)); n != 1 {
		t.Errorf("%d active after revoke", n)
	}
	// Every change is in the audit log under the operator's name.
	for _, action := range []string{"decision.create", "decision.revoke"} {
		entries, err := e.st.ListAudit(context.Background(), store.AuditFilter{Actor: "operator", Action: action})
		if err != nil || len(entries) == 0 {
			t.Errorf("audit %s: %v, %v", action, entries, err)
		}
	}
}

// TestDecisionLabelSelector: the block form takes a label selector
// (exclusive with endpoints), the decisions page shows it, and the
// endpoint pages show the labels.
func TestDecisionLabelSelector(t *testing.T) {
	e := newFleetEnv(t)
	ctx := context.Background()
	if _, err := e.st.SetEndpointLabels(ctx, store.Actor{Name: "admin"}, e.web1, map[string]string{"role": "web", "env": "prod"}); err != nil {
		t.Fatal(err)
	}
	c, csrf := e.login(auth.RoleOperator, passwords[auth.RoleOperator])
	form := func(kv ...string) url.Values {
		v := url.Values{"csrf": {csrf}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	for _, tc := range []struct {
		name string
		form url.Values
		has  string
	}{
		{"bad key", form("value", "198.51.100.7", "labels", "Role=web"), "must be 1-63 characters"},
		{"no value", form("value", "198.51.100.7", "labels", "role"), "want key=value"},
		{"both", form("value", "198.51.100.7", "labels", "role=web", "endpoints", "web1"), "either endpoints or labels"},
	} {
		resp, body := e.post(c, "/decisions", tc.form)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, tc.has) {
			t.Errorf("%s: status %d, has %q = %v", tc.name, resp.StatusCode, tc.has, strings.Contains(body, tc.has))
		}
	}
	if n := len(e.decisions(t, false)); n != 0 {
		t.Fatalf("refused selectors stored %d decisions", n)
	}
	resp, _ := e.post(c, "/decisions", form("value", "198.51.100.7", "endpoints", "all", "labels", "role=web, env=prod"))
	if flash, msg := e.flashOf(c, resp); !strings.Contains(flash, "endpoints labelled env=prod, role=web") || msg != "" {
		t.Errorf("create: flash %q, error %q", flash, msg)
	}
	ds := e.decisions(t, false)
	if len(ds) != 1 || ds[0].Labels["role"] != "web" || ds[0].Labels["env"] != "prod" || ds[0].Endpoints != nil {
		t.Fatalf("decisions = %+v", ds)
	}
	_, body := e.get(c, "/decisions")
	if !strings.Contains(body, "endpoints labelled env=prod, role=web") {
		t.Error("/decisions does not show the selector")
	}
	_, body = e.get(c, "/endpoints")
	if !strings.Contains(body, `<span class="chip endpoint-label" title="label">role=web</span>`) {
		t.Error("/endpoints does not show web1's labels")
	}
	_, body = e.get(c, "/endpoints/"+e.web1)
	if !strings.Contains(body, `id="endpoint-labels"><span class="chip endpoint-label">env=prod</span>`) {
		t.Error("the endpoint page does not show its labels")
	}
}
