package ui

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/detect"
	"github.com/nocsoc/nocsoc/internal/event"
	"github.com/nocsoc/nocsoc/internal/eventstore"
	"github.com/nocsoc/nocsoc/internal/sigma"
	"github.com/nocsoc/nocsoc/rules"
)

// bruteForceRule is a built-in rule the tests switch off and on.
const bruteForceRule = "6b0f3c52-1d0e-4a53-9a51-0c1f7c2e0a04"

func newTestDetector(t testing.TB) *detect.Detector {
	t.Helper()
	rs, errs := detect.LoadRules(nil, rules.Builtin)
	if len(errs) > 0 {
		t.Fatalf("built-in rules: %v", errs)
	}
	eng, cerrs := sigma.Compile(rs, sigma.DefaultPipeline())
	if len(cerrs) > 0 {
		t.Fatalf("compile rules: %v", cerrs)
	}
	return detect.New(detect.Options{Engine: eng})
}

// seedEvents stores sshd failures from one address, a few minutes old.
func (e *env) seedEvents() {
	e.t.Helper()
	now := time.Now().UTC()
	var evs []event.Event
	for i := range 5 {
		evs = append(evs, event.Event{Time: now.Add(-time.Duration(i+1) * time.Minute), Received: now, Host: "web1", Input: "test",
			Raw: "Failed password for root from 203.0.113.7", Fields: map[string]any{
				"process.name": "sshd", "event.outcome": "failure", "source.ip": "203.0.113.7", "user.name": "root",
				"message": "Failed password for root from 203.0.113.7 port 22 ssh2"}})
	}
	if _, err := e.ev.AppendEvents(context.Background(), evs); err != nil {
		e.t.Fatal(err)
	}
}

// Every page of ops.go is rendered for every role by TestEveryPageForEveryRole
// (ui_test.go).

func TestRuleDisableIsStoredAndApplied(t *testing.T) {
	e := newEnv(t)
	path := "/rules/" + bruteForceRule + "/disable"
	// A viewer is refused, and a missing token is refused for everyone.
	vc, vcsrf := e.login(auth.RoleViewer, passwords[auth.RoleViewer])
	if resp, _ := e.post(vc, path, url.Values{"csrf": {vcsrf}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer disable: %d", resp.StatusCode)
	}
	oc, ocsrf := e.login(auth.RoleOperator, passwords[auth.RoleOperator])
	if resp, _ := e.post(oc, path, url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("disable without csrf: %d", resp.StatusCode)
	}
	if e.det.Disabled(bruteForceRule) {
		t.Fatal("refused requests disabled the rule")
	}
	tests := []struct {
		action string
		want   bool
	}{{"disable", true}, {"enable", false}, {"disable", true}}
	for _, tc := range tests {
		resp, body := e.post(oc, "/rules/"+bruteForceRule+"/"+tc.action, url.Values{"csrf": {ocsrf}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: %d %.300s", tc.action, resp.StatusCode, body)
		}
		if got := e.det.Disabled(bruteForceRule); got != tc.want {
			t.Errorf("after %s: detector disabled = %v", tc.action, got)
		}
		off, err := e.st.DisabledRules(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if off[bruteForceRule] != tc.want {
			t.Errorf("after %s: stored = %v", tc.action, off)
		}
	}
	if resp, _ := e.post(oc, "/rules/nope/disable", url.Values{"csrf": {ocsrf}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown rule: %d", resp.StatusCode)
	}
	// A new console (a restart) applies the stored set to its detector.
	det := newTestDetector(t)
	u2, err := New(Options{Store: e.st, NOC: e.svc, Events: e.ev, Detector: det})
	if err != nil {
		t.Fatal(err)
	}
	defer u2.Close()
	if !det.Disabled(bruteForceRule) {
		t.Error("stored disabled rule not applied at start")
	}
}

func TestAdminActions(t *testing.T) {
	e := newEnv(t)
	c, csrf := e.login(auth.RoleAdmin, passwords[auth.RoleAdmin])
	form := func(kv ...string) url.Values {
		v := url.Values{"csrf": {csrf}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	tests := []struct {
		name, path string
		form       url.Values
		status     int
		has        string
	}{
		{"bad role", "/admin/users", form("name", "carol", "role", "root"), 422, "role:"},
		{"short password", "/admin/users", form("name", "carol", "role", "viewer", "password", "short"), 422, "password:"},
		{"bad name", "/admin/users", form("name", "-x", "role", "viewer"), 422, "name:"},
		{"create user", "/admin/users", form("name", "carol", "role", "viewer"), 303, ""},
		{"duplicate user", "/admin/users", form("name", "Carol", "role", "viewer"), 409, "already"},
		{"token without name", "/admin/tokens", form("user", "carol"), 422, "name:"},
		{"token for nobody", "/admin/tokens", form("name", "ci", "user", "zed"), 422, "user:"},
		{"token bad expiry", "/admin/tokens", form("name", "ci", "user", "carol", "expires_days", "-1"), 422, "expires_days:"},
		{"create token", "/admin/tokens", form("name", "ci", "user", "carol", "expires_days", "30"), 200, "secret-value"},
		{"bad integration type", "/admin/integrations", form("name", "am", "type", "smtp"), 422, "type:"},
		{"create integration", "/admin/integrations", form("name", "am", "type", "alertmanager"), 200, "secret-value"},
		{"no such channel", "/admin/channels/nope/test", form(), 404, ""},
		{"forged (no csrf)", "/admin/users", url.Values{"name": {"eve"}, "role": {"admin"}}, 403, ""},
	}
	for _, tc := range tests {
		resp, body := e.post(c, tc.path, tc.form)
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.has) {
			t.Errorf("%s: status %d (want %d), has %q = %v\n%.300s", tc.name, resp.StatusCode, tc.status, tc.has, strings.Contains(body, tc.has), body)
		}
	}
	ctx := context.Background()
	if _, err := e.st.UserByName(ctx, "eve"); err == nil {
		t.Error("forged POST created a user")
	}
	carol, err := e.st.UserByName(ctx, "carol")
	if err != nil {
		t.Fatal(err)
	}
	id := itoa
	for _, step := range []struct{ path, role string }{{"/admin/users/" + id(carol.ID) + "/role", "operator"}, {"/admin/users/" + id(carol.ID) + "/disable", ""}} {
		if resp, body := e.post(c, step.path, form("role", step.role)); resp.StatusCode != 303 {
			t.Errorf("%s: %d %.300s", step.path, resp.StatusCode, body)
		}
	}
	if carol, _ = e.st.UserByName(ctx, "carol"); carol.Role != "operator" || !carol.Disabled {
		t.Errorf("carol = %+v", carol)
	}
	// Admins cannot lock themselves out.
	admin, _ := e.st.UserByName(ctx, auth.RoleAdmin)
	if resp, _ := e.post(c, "/admin/users/"+id(admin.ID)+"/role", form("role", "viewer")); resp.StatusCode != http.StatusConflict {
		t.Errorf("self demotion: %d", resp.StatusCode)
	}
	toks, err := e.st.ListTokens(ctx, carol.ID)
	if err != nil || len(toks) != 1 {
		t.Fatalf("tokens = %v, %v", toks, err)
	}
	if resp, _ := e.post(c, "/admin/tokens/"+id(toks[0].ID)+"/revoke", form()); resp.StatusCode != 303 {
		t.Errorf("revoke: %d", resp.StatusCode)
	}
	if resp, _ := e.post(c, "/admin/tokens/"+id(toks[0].ID)+"/revoke", form()); resp.StatusCode != http.StatusConflict {
		t.Errorf("second revoke: %d", resp.StatusCode)
	}
	// Every change is in the audit log under the admin's name.
	_, body := e.get(c, "/admin/audit?actor=admin")
	for _, a := range []string{"user.create", "token.create", "token.revoke", "integration.create"} {
		if !strings.Contains(body, a) {
			t.Errorf("audit lacks %s", a)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// behindSearch is the event store with a loader that has fallen behind:
// AwaitSearchable reports events it could not load in time.
type behindSearch struct {
	*eventstore.Store
	unloaded int
}

func (b behindSearch) AwaitSearchable(context.Context, time.Duration) (int, error) {
	return b.unloaded, nil
}

// TestInvestigateSaysWhatIsNotSearchable: when the event store reports
// events it has not loaded within its search wait, the Investigate page
// and the pivot still show what is loaded and say how many events they
// leave out.
func TestInvestigateSaysWhatIsNotSearchable(t *testing.T) {
	e := newEnv(t)
	e.seedEvents()
	c, _ := e.login(auth.RoleViewer, passwords[auth.RoleViewer])
	_, body := e.get(c, "/investigate?q=root")
	if !strings.Contains(body, "5 events") || strings.Contains(body, `id="unloaded"`) {
		t.Fatalf("with every event loaded: want 5 events and no notice\n%s", body)
	}
	e.ui.ext.search = behindSearch{e.ev, 70000}
	_, body = e.get(c, "/investigate?q=root")
	if !strings.Contains(body, "5 events") || !strings.Contains(body, "70000 of the newest events are not searchable yet") {
		t.Fatalf("with a backlog: want the 5 loaded events and the notice\n%s", body)
	}
	_, body = e.get(c, "/investigate/pivot?entity=ip&value=203.0.113.7")
	if !strings.Contains(body, "Failed password for root") || !strings.Contains(body, "70000 of the newest events are not searchable yet") {
		t.Fatalf("pivot with a backlog: want the loaded events and the notice\n%s", body)
	}
}
