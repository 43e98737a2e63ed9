package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/store"
)

var (
	scriptTagRE  = regexp.MustCompile(`(?i)<script[^>]*>`)
	inlineAttrRE = regexp.MustCompile(`(?i)\s(on[a-z]+|style)=`)
)

// assertSafeHTML fails on inline scripts, inline event handlers and inline
// styles: the CSP would block them, so they must not be needed.
func assertSafeHTML(t *testing.T, path, body string) {
	t.Helper()
	for _, tag := range scriptTagRE.FindAllString(body, -1) {
		if !strings.Contains(tag, "src=") {
			t.Errorf("%s: inline script %q", path, tag)
		}
	}
	if m := inlineAttrRE.FindString(body); m != "" {
		t.Errorf("%s: inline attribute %q", path, m)
	}
	if strings.Contains(body, "ZgotmplZ") {
		t.Errorf("%s: html/template rejected a value (ZgotmplZ)", path)
	}
}

// TestEveryPageForEveryRole renders every console page as every role: the
// status each role gets, what the page must show, the CSP on every
// response, no inline script or style in any HTML page, and that each role
// sees exactly the buttons and links it may use.
func TestEveryPageForEveryRole(t *testing.T) {
	e := newEnv(t)
	e.fire("disk full", "noc", "high", map[string]string{"host": "db1"}) // alert 1 on incident 1
	e.seedEvents()
	all := func(code int) map[string]int {
		return map[string]int{auth.RoleAdmin: code, auth.RoleOperator: code, auth.RoleViewer: code}
	}
	operator := func(code int) map[string]int {
		return map[string]int{auth.RoleAdmin: code, auth.RoleOperator: code, auth.RoleViewer: 403}
	}
	adminOnly := map[string]int{auth.RoleAdmin: 200, auth.RoleOperator: 403, auth.RoleViewer: 403}
	pages := []struct {
		path string
		want map[string]int // status by role
		has  []string       // checked on 200 and 422 pages
	}{
		// NOC
		{"/noc", all(200), []string{"NOC wall", `data-check="web"`, "backend", "frontend", `data-live="1"`}},
		{"/noc?problems=1", all(200), []string{"No checks with problems"}},
		{"/noc?by=team", all(200), []string{"core", "no team"}},
		{"/noc/wall", all(200), []string{`data-check="db"`}},
		{"/checks/web", all(200), []string{"Latency", "Uptime", "State changes", "Latest errors", "<svg"}},
		{"/checks/web?period=7d", all(200), []string{`aria-current="true">7d`}},
		{"/checks/api", all(200), []string{"config file"}},
		{"/checks/nope", all(404), nil},
		{"/checks/web/edit", operator(200), nil},
		{"/checks/db/edit", map[string]int{auth.RoleAdmin: 409, auth.RoleOperator: 409, auth.RoleViewer: 403}, nil},
		// SOC and incidents
		{"/soc", all(200), []string{"SOC queue", `data-id="1"`, "disk full"}},
		{"/soc?team=soc&severity=critical&status=firing&suppressed=no&q=disk", all(200), []string{"No alerts match"}},
		{"/soc/rows", all(200), []string{`data-id="1"`}},
		{"/soc/alerts/1/silence", operator(200), nil},
		{"/incidents", all(200), []string{"triggered", "acknowledged", "investigating", "mitigated", "resolved", `data-incident="1"`}},
		{"/incidents?team=noc", all(200), []string{`data-incident="1"`}},
		{"/incidents/1", all(200), []string{"Timeline", "Escalation", "Tasks", "Observables", "disk full"}},
		{"/incidents/1?order=desc", all(200), []string{"Timeline", "Oldest first"}},
		{"/incidents/1?order=sideways", all(400), nil},
		{"/incidents/999", all(404), nil},
		// Investigate
		{"/investigate", all(200), []string{"5 events", `class="chart hist"`, "/investigate/pivot?entity=ip&amp;value=203.0.113.7", "Export CSV"}},
		{"/investigate?q=process.name:sshd&range=15m&fields=user.name", all(200), []string{"5 events", "<th>user.name</th>", "entity=user&amp;value=root"}},
		{"/investigate?q=source.ip:198.51.100.1", all(200), []string{"0 events", "No events match"}},
		{"/investigate?q=%28oops", all(422), []string{"position", "query-error"}},
		{"/investigate?range=custom&from=yesterday", all(422), []string{"from:"}},
		{"/investigate/pivot?entity=ip&value=203.0.113.7", all(200), []string{"Pivot: ip", "Failed password for root", "pivot-timeline"}},
		{"/investigate/pivot?entity=mac&value=x", all(422), []string{"entity:"}},
		{"/investigate/export?format=csv&q=root", all(200), []string{"203.0.113.7"}},
		{"/investigate/export?format=xml", all(422), nil},
		// Rules, metrics, on-call
		{"/rules", all(200), []string{"Detection rules", bruteForceRule, "nocsoc"}},
		{"/rules?level=medium&q=brute", all(200), []string{bruteForceRule}},
		{"/rules?q=no-such-rule-text", all(200), []string{"No rule matches"}},
		{"/rules/" + bruteForceRule, all(200), []string{"rule-yaml", "Author", "title:"}},
		{"/rules/nope", all(404), nil},
		{"/ops", all(200), []string{"MTTA per day", "Uptime by service", "shop", "escalations", "hand-offs"}},
		{"/oncall", all(200), []string{"On call now", "No schedules"}},
		// Admin
		{"/admin/users", adminOnly, []string{"New user", `data-user="viewer"`}},
		{"/admin/tokens", adminOnly, []string{"New token"}},
		{"/admin/channels", adminOnly, []string{"No notification channels"}},
		{"/admin/integrations", adminOnly, []string{"New integration"}},
		{"/admin/audit", adminOnly, []string{"user.login"}},
		{"/admin/audit?actor=nobody", adminOnly, []string{"No entries"}},
		{"/admin/nope", map[string]int{auth.RoleAdmin: 404, auth.RoleOperator: 403, auth.RoleViewer: 403}, nil},
		// Account and the rest
		{"/account/password", all(200), []string{"Change password"}},
		{"/", all(303), nil},
		{"/no/such/page", all(404), nil},
	}
	// What each role must (and must not) be offered, by page.
	offers := []struct {
		path, text string
		shownTo    func(role string) bool
	}{
		{"/checks/web", "Run now", canOperate},
		{"/checks/web", `href="/checks/web/edit"`, canOperate},
		{"/checks/api", "/checks/api/edit", func(string) bool { return false }}, // provisioned: never editable
		{"/rules", "rule-toggle", canOperate},
		{"/rules", `href="/admin/users"`, func(r string) bool { return r == auth.RoleAdmin }},
	}
	for _, role := range auth.Roles {
		t.Run(role, func(t *testing.T) {
			c, _ := e.login(role, passwords[role])
			for _, p := range pages {
				resp, body := e.get(c, p.path)
				if resp.StatusCode != p.want[role] {
					t.Errorf("GET %s: status %d, want %d\n%.400s", p.path, resp.StatusCode, p.want[role], body)
					continue
				}
				if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") ||
					strings.Contains(csp, "unsafe-inline") {
					t.Errorf("GET %s: CSP %q", p.path, csp)
				}
				if resp.StatusCode != 200 && resp.StatusCode != 422 {
					continue
				}
				for _, s := range p.has {
					if !strings.Contains(body, s) {
						t.Errorf("GET %s: body lacks %q", p.path, s)
					}
				}
				if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
					assertSafeHTML(t, p.path, body)
				}
			}
			for _, o := range offers {
				_, body := e.get(c, o.path)
				if got, want := strings.Contains(body, o.text), o.shownTo(role); got != want {
					t.Errorf("GET %s: %q shown = %v for %s, want %v", o.path, o.text, got, role, want)
				}
			}
		})
	}
}

func canOperate(role string) bool { return role != auth.RoleViewer }

func TestSignedOutIsRedirected(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	for _, p := range []string{"/noc", "/checks/web", "/account/password"} {
		resp, _ := e.get(c, p)
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
			t.Errorf("GET %s signed out: %d %s", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if resp, _ := e.get(c, "/events/stream"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("event stream signed out: %d", resp.StatusCode)
	}
	if resp, _ := e.post(c, "/checks/web/run", url.Values{}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST signed out: %d", resp.StatusCode)
	}
	resp, body := e.get(c, "/login")
	if resp.StatusCode != 200 {
		t.Fatalf("login page: %d", resp.StatusCode)
	}
	assertSafeHTML(t, "/login", body)
}

func TestLogin(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name       string
		user, pw   string
		badCSRF    bool
		next       string
		wantStatus int
		wantLoc    string
	}{
		{"ok", "operator", passwords["operator"], false, "/checks/web", 303, "/checks/web"},
		{"case-insensitive name", "OPERATOR", passwords["operator"], false, "", 303, "/noc"},
		{"open redirect refused", "viewer", passwords["viewer"], false, "//evil.example/x", 303, "/noc"},
		{"absolute next refused", "viewer", passwords["viewer"], false, "https://evil.example/", 303, "/noc"},
		{"wrong password", "viewer", "nope", false, "", 401, ""},
		{"unknown user", "mallory", "whatever", false, "", 401, ""},
		{"empty password", "viewer", "", false, "", 422, ""},
		{"forged login form", "viewer", passwords["viewer"], true, "", 403, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := e.client()
			_, body := e.get(c, "/login")
			tok := csrfOf(t, body)
			if tc.badCSRF {
				tok = "forged"
			}
			resp, body := e.post(c, "/login", url.Values{"csrf": {tok}, "name": {tc.user}, "password": {tc.pw}, "next": {tc.next}})
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d\n%.300s", resp.StatusCode, tc.wantStatus, body)
			}
			var sess *http.Cookie
			for _, ck := range resp.Cookies() {
				if ck.Name == sessionCookie && ck.Value != "" {
					sess = ck
				}
			}
			if tc.wantStatus != 303 {
				if sess != nil {
					t.Errorf("failed login set a session cookie")
				}
				return
			}
			if loc := resp.Header.Get("Location"); loc != tc.wantLoc {
				t.Errorf("Location %q, want %q", loc, tc.wantLoc)
			}
			if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.Secure {
				t.Fatalf("session cookie %+v", sess)
			}
			// Only a hash of the token is stored.
			if _, _, err := e.st.SessionByHash(context.Background(), sess.Value, time.Now()); err == nil {
				t.Errorf("the plain session token found as a hash in the store")
			}
		})
	}
}

func TestSecureCookie(t *testing.T) {
	e := newEnv(t)
	u, err := New(Options{Store: e.st, NOC: e.svc, Events: e.ev, Secure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	rec := httptest.NewRecorder()
	u.ServeHTTP(rec, httptest.NewRequest("GET", "/login", nil))
	tok := csrfOf(t, rec.Body.String())
	ck := rec.Result().Cookies()[0]
	if ck.Name != "__Host-"+loginCSRFCookie || !ck.Secure {
		t.Fatalf("login cookie %+v", ck)
	}
	form := url.Values{"csrf": {tok}, "name": {"admin"}, "password": {passwords["admin"]}}
	req := httptest.NewRequest("POST", "/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(ck)
	rec = httptest.NewRecorder()
	u.ServeHTTP(rec, req)
	if rec.Code != 303 {
		t.Fatalf("status %d", rec.Code)
	}
	var found bool
	for _, c := range rec.Result().Cookies() {
		if c.Name == "__Host-"+sessionCookie && c.Value != "" {
			found = c.Secure && c.HttpOnly && c.Path == "/" && c.Domain == ""
		}
	}
	if !found {
		t.Errorf("no secure __Host- session cookie in %v", rec.Result().Cookies())
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	c, csrf := e.login("viewer", passwords["viewer"])
	if resp, _ := e.post(c, "/logout", url.Values{}); resp.StatusCode != 403 {
		t.Errorf("logout without csrf: %d", resp.StatusCode)
	}
	u, _ := url.Parse(e.srv.URL)
	old := c.Jar.Cookies(u)
	if resp, _ := e.post(c, "/logout", url.Values{"csrf": {csrf}}); resp.StatusCode != 303 {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	// The old cookie no longer works even if a copy was kept.
	c2 := e.client()
	c2.Jar.SetCookies(u, old)
	if resp, _ := e.get(c2, "/noc"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("old session after logout: %d", resp.StatusCode)
	}
}

func auditCount(t *testing.T, st *store.Store, action string) int {
	t.Helper()
	es, err := st.ListAudit(context.Background(), store.AuditFilter{Action: action, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func TestCSRFAndRoles(t *testing.T) {
	e := newEnv(t)
	op, opCSRF := e.login("operator", passwords["operator"])
	viewer, viewerCSRF := e.login("viewer", passwords["viewer"])
	tests := []struct {
		name   string
		c      *http.Client
		form   url.Values
		hdr    []string
		status int
	}{
		{"no token", op, url.Values{}, nil, 403},
		{"wrong token", op, url.Values{"csrf": {"x" + opCSRF}}, nil, 403},
		{"another session's token", op, url.Values{"csrf": {viewerCSRF}}, nil, 403},
		{"cross-site origin", op, url.Values{"csrf": {opCSRF}}, []string{"Origin", "https://evil.example"}, 403},
		{"viewer with a valid token", viewer, url.Values{"csrf": {viewerCSRF}}, nil, 403},
		{"operator", op, url.Values{"csrf": {opCSRF}}, nil, 303},
		{"operator, token in header", op, url.Values{}, []string{"X-CSRF-Token", opCSRF}, 303},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := auditCount(t, e.st, "check.run")
			resp, body := e.post(tc.c, "/checks/web/run", tc.form, tc.hdr...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d\n%.300s", resp.StatusCode, tc.status, body)
			}
			want := before
			if tc.status == 303 {
				want++
			}
			if got := auditCount(t, e.st, "check.run"); got != want {
				t.Errorf("check.run audit entries %d, want %d", got, want)
			}
		})
	}
}

func TestChangePassword(t *testing.T) {
	e := newEnv(t)
	c, csrf := e.login("operator", passwords["operator"])
	other, _ := e.login("operator", passwords["operator"])
	const newPW = "a much better password"
	tests := []struct {
		name, cur, next, confirm string
		status                   int
		msg                      string
	}{
		{"wrong current", "nope", newPW, newPW, 422, "current:"},
		{"too short", passwords["operator"], "short", "short", 422, "new:"},
		{"mismatch", passwords["operator"], newPW, newPW + "x", 422, "confirm:"},
		{"ok", passwords["operator"], newPW, newPW, 200, "Password changed. 1 other session"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.post(c, "/account/password", url.Values{"csrf": {csrf}, "current": {tc.cur}, "new": {tc.next}, "confirm": {tc.confirm}})
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.msg) {
				t.Fatalf("status %d (want %d), body lacks %q:\n%.500s", resp.StatusCode, tc.status, tc.msg, body)
			}
		})
	}
	if resp, _ := e.get(other, "/noc"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("other session survived the password change: %d", resp.StatusCode)
	}
	if resp, _ := e.get(c, "/noc"); resp.StatusCode != 200 {
		t.Errorf("own session ended by the password change: %d", resp.StatusCode)
	}
	e.login("operator", newPW)
}

func TestEditCheck(t *testing.T) {
	e := newEnv(t)
	c, csrf := e.login("operator", passwords["operator"])
	base := url.Values{"csrf": {csrf}, "target": {e.web.URL}, "interval": {"1h"}, "timeout": {"2s"}, "severity": {"high"},
		"fail_threshold": {"1"}, "success_threshold": {"1"}, "labels": {"group=frontend"}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for kk, vv := range base {
			f[kk] = vv
		}
		f.Set(k, v)
		return f
	}
	tests := []struct {
		name   string
		form   url.Values
		status int
		msg    string
	}{
		{"bad interval", with("interval", "soon"), 422, "interval"},
		{"interval too short", with("interval", "10ms"), 422, "interval"},
		{"bad severity", with("severity", "apocalyptic"), 422, "severity"},
		{"bad label line", with("labels", "group=frontend\nnonsense"), 422, "labels line 2"},
		{"unknown parent", with("depends_on", "ghost"), 422, "ghost"},
		{"bad threshold", with("fail_threshold", "many"), 422, "fail_threshold"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.post(c, "/checks/web/edit", tc.form)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.msg) {
				t.Fatalf("status %d (want %d), body lacks %q:\n%.600s", resp.StatusCode, tc.status, tc.msg, body)
			}
			if v, _ := e.svc.Check("web"); v.Spec.Labels["group"] != "frontend" || v.Spec.Interval.D() != time.Hour {
				t.Errorf("a rejected edit changed the check: %+v", v.Spec)
			}
		})
	}
	resp, body := e.post(c, "/checks/web/edit", with("labels", "group=edge\nowner=<ops>"))
	if resp.StatusCode != 303 {
		t.Fatalf("good edit: %d\n%.500s", resp.StatusCode, body)
	}
	v, _ := e.svc.Check("web")
	if v.Spec.Labels["group"] != "edge" || v.Spec.Labels["owner"] != "<ops>" {
		t.Errorf("labels after edit: %v", v.Spec.Labels)
	}
	// The label is escaped on the way out.
	_, body = e.get(c, "/checks/web")
	if strings.Contains(body, "owner=<ops>") || !strings.Contains(body, "owner=&lt;ops&gt;") {
		t.Errorf("label not escaped")
	}
	if resp, _ := e.post(c, "/checks/api/edit", with("interval", "1m")); resp.StatusCode != 409 {
		t.Errorf("edit provisioned: %d", resp.StatusCode)
	}
}

// TestEventStream reads the SSE stream over HTTP and sees the change when
// a check's target stops.
func TestEventStream(t *testing.T) {
	e := newEnv(t)
	c, _ := e.login("viewer", passwords["viewer"])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/events/stream", nil)
	c.Timeout = 0
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Scan() // "retry: ..." arrives once the subscription exists
	e.web.Close()
	e.runAndWait("web", check.StateDown)
	var event string
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			event = v
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok && event == "check" {
			var ev checkEvent
			if err := json.Unmarshal([]byte(v), &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Check == "web" && ev.State == "down" && ev.From == "up" {
				return
			}
		}
	}
	t.Fatalf("stream ended without the change: %v", sc.Err())
}
