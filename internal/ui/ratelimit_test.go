package ui

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/store"
)

// fakeClock is a settable clock for the limiter tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestLoginLimiter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLoginLimiter(DefaultLoginFailures, DefaultLoginWindow, 100)
	// Four failures a minute apart: not locked.
	for i := range 4 {
		if locked, _ := l.fail(t0.Add(time.Duration(i)*time.Minute), "ip:a", "user:x"); len(locked) > 0 {
			t.Fatalf("locked after %d failures", i+1)
		}
	}
	if u := l.lockedUntil(t0.Add(4*time.Minute), "ip:a"); !u.IsZero() {
		t.Fatalf("locked after 4 failures until %v", u)
	}
	// The fifth locks both keys until the first failure leaves the window.
	locked, until := l.fail(t0.Add(4*time.Minute), "ip:a", "user:x")
	if len(locked) != 2 || !until.Equal(t0.Add(15*time.Minute)) {
		t.Fatalf("fifth failure: locked %v until %v", locked, until)
	}
	if u := l.lockedUntil(t0.Add(14*time.Minute), "ip:b", "user:x"); !u.Equal(t0.Add(15 * time.Minute)) {
		t.Errorf("user:x from another address: until %v", u)
	}
	if u := l.lockedUntil(t0.Add(14*time.Minute), "ip:b", "user:y"); !u.IsZero() {
		t.Errorf("an unrelated key is locked until %v", u)
	}
	// Sliding window: at 15m the first failure leaves it; four remain.
	if u := l.lockedUntil(t0.Add(15*time.Minute), "ip:a"); !u.IsZero() {
		t.Errorf("still locked at 15m until %v", u)
	}
	// One more failure locks again, until the (new) oldest leaves.
	if _, until := l.fail(t0.Add(15*time.Minute), "ip:a"); !until.Equal(t0.Add(16 * time.Minute)) {
		t.Errorf("relock until %v, want 16m", until)
	}
	l.reset("ip:a", "user:x")
	if u := l.lockedUntil(t0.Add(15*time.Minute), "ip:a", "user:x"); !u.IsZero() {
		t.Errorf("locked after reset until %v", u)
	}

	// Memory stays bounded however many keys fail.
	small := newLoginLimiter(5, time.Minute, 50)
	for i := range 1000 {
		small.fail(t0.Add(time.Duration(i)*time.Millisecond), fmt.Sprintf("user:%d", i))
	}
	if n := small.size(); n > 50 {
		t.Errorf("%d keys tracked, cap 50", n)
	}
	// The newest keys survive eviction.
	small.fail(t0.Add(time.Second), "user:999", "user:999", "user:999", "user:999")
	if u := small.lockedUntil(t0.Add(time.Second), "user:999"); u.IsZero() {
		t.Errorf("the newest key was evicted")
	}
}

func TestSourceKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7:5555":               "ip:192.0.2.7",
		"[::ffff:192.0.2.7]:1":         "ip:192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:443":   "ip:2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443":   "ip:2001:db8:1:2::/64",
		"not an address":               "ip:not an address",
		"[2001:db8:1:3::1%eth0]:65535": "ip:2001:db8:1:3::/64",
	} {
		if got := sourceKey(in); got != want {
			t.Errorf("sourceKey(%q) = %q, want %q", in, got, want)
		}
	}
	if k := userKey(strings.Repeat("A", 70000)); len(k) != len("user:")+maxUserKey || k != "user:"+strings.Repeat("a", maxUserKey) {
		t.Errorf("long user key has %d bytes", len(k))
	}
}

// clientFrom is a cookie-keeping client whose connections come from the
// given loopback address, so the server sees distinct sources.
func clientFrom(src string) *http.Client {
	jar, _ := cookiejar.New(nil)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second,
		Transport:     &http.Transport{DialContext: d.DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// TestLoginRateLimit drives the real sign-in form with an injected clock:
// failures lock a name across addresses and an address across names, with
// 429 and Retry-After, a logged and audited lockout, a refusal even of the
// right password while locked, and a reset on success.
func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t)
	clock := &fakeClock{t: time.Now()}
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	}), nil))
	u, err := New(Options{Store: e.st, NOC: e.svc, Events: e.ev, Logger: log, Now: clock.Now, LoginFailures: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	srv := httptest.NewServer(u)
	defer srv.Close()
	// Each attempt is a fresh browser (no session yet) from address src.
	try := func(src, name, pw string) *http.Response {
		t.Helper()
		c := clientFrom(src)
		resp, err := c.Get(srv.URL + "/login")
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		resp, err = c.PostForm(srv.URL+"/login", url.Values{"csrf": {csrfOf(t, b.String())}, "name": {name}, "password": {pw}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	a, b, c := "127.0.0.2", "127.0.0.3", "127.0.0.4"

	// Per name: failures from two addresses lock "operator" for a third.
	for i, cl := range []string{a, b} {
		if resp := try(cl, "operator", "wrong"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, resp.StatusCode)
		}
	}
	resp := try(a, "Operator", "wrong") // case-folded: same name
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "900" {
		t.Fatalf("third failure: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	clock.Add(5 * time.Minute)
	resp = try(c, "operator", passwords["operator"])
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "600" {
		t.Fatalf("right password while locked: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Another name from a clean address is not affected.
	if resp := try(c, "viewer", passwords["viewer"]); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("viewer from a clean address: %d", resp.StatusCode)
	}
	if n := auditCount(t, e.st, "user.login.locked"); n != 1 {
		t.Errorf("%d lockout audit entries, want 1 (user:operator)", n)
	}
	es, err := e.st.ListAudit(context.Background(), store.AuditFilter{Action: "user.login.locked", Limit: 10})
	if err != nil || len(es) != 1 || es[0].Target != "user:operator" {
		t.Errorf("lockout audit entries %+v, %v", es, err)
	}
	logMu.Lock()
	if !strings.Contains(logs.String(), "console sign-in locked out") || strings.Contains(logs.String(), passwords["operator"]) {
		t.Errorf("lockout log:\n%s", logs.String())
	}
	logMu.Unlock()
	// The lock ends when the oldest failure leaves the window.
	clock.Add(10 * time.Minute)
	if resp := try(c, "operator", passwords["operator"]); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after the window: %d", resp.StatusCode)
	}

	// Per address: failures for different names lock the address, even
	// for a name that never failed (existing or not, the same answer).
	for i, name := range []string{"nobody", "viewer"} {
		if resp := try(b, name, "wrong"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("address failure %d: %d", i+1, resp.StatusCode)
		}
	}
	// b already failed once for operator 15 minutes ago: that one left.
	if resp := try(b, "mallory", "wrong"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third failure from one address: %d", resp.StatusCode)
	}
	if resp := try(b, "admin", passwords["admin"]); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("right password from a locked address: %d", resp.StatusCode)
	}
	if n := auditCount(t, e.st, "user.login.locked"); n != 2 {
		t.Errorf("%d lockout audit entries, want 2", n)
	}

	// Success resets: two failures, a success, two failures: no lock.
	for range 2 {
		try(a, "admin", "wrong")
	}
	if resp := try(a, "admin", passwords["admin"]); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("success after two failures: %d", resp.StatusCode)
	}
	for i := range 2 {
		if resp := try(a, "admin", "wrong"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d after reset: %d", i+1, resp.StatusCode)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
