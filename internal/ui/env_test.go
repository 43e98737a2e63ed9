package ui

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/detect"
	"github.com/nocsoc/nocsoc/internal/eventstore"
	"github.com/nocsoc/nocsoc/internal/monitor"
	"github.com/nocsoc/nocsoc/internal/noc"
	"github.com/nocsoc/nocsoc/internal/response"
	"github.com/nocsoc/nocsoc/internal/store"
)

// env is a console on real engines: SQLite and DuckDB in a temp dir, a
// running noc.Service probing loopback targets, served by httptest.
type env struct {
	t    testing.TB
	st   *store.Store
	ev   *eventstore.Store
	svc  *noc.Service
	resp *response.Service // incident workflow behind /soc and /incidents
	ui   *UI
	srv  *httptest.Server
	web  *httptest.Server // target of the "web" check (API-managed)
	dbLn net.Listener     // target of the "db" check (provisioned)
	det  *detect.Detector // detection with the built-in rules (ops_test.go)
}

// Passwords of the test users, by role (user names equal the roles).
var passwords = map[string]string{
	auth.RoleAdmin:    "admin password 1",
	auth.RoleOperator: "operator password 1",
	auth.RoleViewer:   "viewer password 1",
}

// passwordHashes are auth.HashPassword(passwords[role]), computed once
// ahead: argon2id takes a second or more on a loaded 2-core machine.
var passwordHashes = map[string]string{
	auth.RoleAdmin:    "$argon2id$v=19$m=65536,t=2,p=2$gD3gbiXAGKnI8UqCJL37YA$niDNtBJaHfO47/+M238G+vGBIclR2NewOEySw/1acs4",
	auth.RoleOperator: "$argon2id$v=19$m=65536,t=2,p=2$X1UY6EbA82UDfP8OGvOhOA$y6497Tgy+BVFmqznfnqmShepGlSjLeuHkNAH/aSZizo",
	auth.RoleViewer:   "$argon2id$v=19$m=65536,t=2,p=2$BA9wF2kyaXGZcvtnyO1R9w$fvNttdvZiZnuzwqdJuErFZZ78yZotJX6Ke1KRgFfhq8",
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	e := &env{t: t}
	log := slog.New(slog.DiscardHandler)
	var err error
	if e.st, err = store.Open(ctx, filepath.Join(dir, "state.db"), log); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.st.Close() })
	if e.ev, err = eventstore.Open(ctx, eventstore.Options{Path: filepath.Join(dir, "events.duckdb"),
		MemoryLimit: "256MB", Threads: 1, FlushEvery: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.ev.Close() })
	for _, role := range auth.Roles {
		u := store.User{Name: role, Role: role, PasswordHash: passwordHashes[role]}
		if _, err := e.st.CreateUser(ctx, store.Actor{Name: "test"}, u); err != nil {
			t.Fatal(err)
		}
	}

	e.web = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(e.web.Close)
	if e.dbLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.dbLn.Close() })
	go func() {
		for {
			c, err := e.dbLn.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()

	e.svc, err = noc.New(ctx, noc.Options{Store: e.st, Events: e.ev, Prober: check.NewProber(check.ProberOptions{}),
		Workers: 4, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	hour := check.Duration(time.Hour)
	prov := []check.Spec{
		{Name: "db", Type: check.TypeTCP, Target: e.dbLn.Addr().String(), Interval: hour, Labels: map[string]string{"group": "backend"}},
		{Name: "api", Type: check.TypeTCP, Target: e.dbLn.Addr().String(), Interval: hour, DependsOn: []string{"db"},
			Labels: map[string]string{"group": "backend", "team": "core"}},
	}
	if err := e.svc.Apply(ctx, prov, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.CreateCheck(ctx, store.Actor{Name: "test"}, check.Spec{Name: "web", Type: check.TypeHTTP,
		Target: e.web.URL, Interval: hour, Timeout: check.Duration(2 * time.Second),
		Labels: map[string]string{"group": "frontend", "service": "shop"}}); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); e.svc.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })

	if e.resp, err = response.New(ctx, response.Options{Store: e.st, Logger: log}); err != nil {
		t.Fatal(err)
	}
	respDone := make(chan struct{})
	go func() { defer close(respDone); _ = e.resp.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-respDone })
	e.det = newTestDetector(t)
	if e.ui, err = New(Options{Store: e.st, NOC: e.svc, Events: e.ev, Response: e.resp, Detector: e.det, Logger: log}); err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.ui)
	t.Cleanup(e.srv.Close)
	t.Cleanup(e.ui.Close) // runs first: ends open event streams
	for _, n := range []string{"db", "api", "web"} {
		e.runAndWait(n, check.StateUp)
	}
	return e
}

// runAndWait runs a check now and waits (on the NOC's change feed, not a
// timer) until it shows state.
func (e *env) runAndWait(name string, state check.State) {
	e.t.Helper()
	ch := make(chan struct{}, 1)
	cancel := e.svc.Subscribe(func(o monitor.Outcome) {
		if o.Check == name && o.To == state {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	})
	defer cancel()
	if v, err := e.svc.Check(name); err == nil && v.Status.State == state {
		return
	}
	if err := e.svc.RunNow(name); err != nil {
		e.t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		e.t.Fatalf("check %s did not become %s", name, state)
	}
}

// client is a browser-like HTTP client that keeps cookies and does not
// follow redirects, so tests see them.
func (e *env) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfOf returns the first form token in a page.
func csrfOf(t testing.TB, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf field in page:\n%s", body)
	}
	return m[1]
}

func (e *env) get(c *http.Client, path string) (*http.Response, string) {
	e.t.Helper()
	resp, err := c.Get(e.srv.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, string(b)
}

func (e *env) post(c *http.Client, path string, form url.Values, hdr ...string) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, string(b)
}

// login signs in as user and returns the client and the session's CSRF
// token.
func (e *env) login(user, password string) (*http.Client, string) {
	e.t.Helper()
	c := e.client()
	_, body := e.get(c, "/login")
	resp, body := e.post(c, "/login", url.Values{"csrf": {csrfOf(e.t, body)}, "name": {user}, "password": {password}})
	if resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("login %s: status %d\n%s", user, resp.StatusCode, body)
	}
	_, body = e.get(c, "/account/password")
	return c, csrfOf(e.t, body)
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
