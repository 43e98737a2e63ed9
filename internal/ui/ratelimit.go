package ui

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults for the sign-in limiter (Options.LoginFailures, LoginWindow).
const (
	DefaultLoginFailures = 5
	DefaultLoginWindow   = 15 * time.Minute
	// loginLimiterKeys bounds the limiter's memory: at most this many
	// source addresses and user names are tracked (a few MB at most).
	loginLimiterKeys = 10000
)

// loginLimiter counts failed sign-ins per source address and per user
// name in a sliding window. A key with max failures inside the window is
// locked until the oldest of them leaves it. It keeps at most max
// timestamps per key and at most loginLimiterKeys keys; when full it drops
// expired keys and then the key whose last failure is oldest.
//
// Evicting a live key forgets its failures; to force that an attacker must
// produce loginLimiterKeys fresh failures inside one window, each paid for
// with a password hash on the server and each counted against its own
// address, so the per-name limit is not cheaply bypassed.
type loginLimiter struct {
	max    int
	window time.Duration
	cap    int

	mu   sync.Mutex
	keys map[string]*failures
}

// failures are one key's failure times, oldest first.
type failures struct {
	times []time.Time
}

func newLoginLimiter(max int, window time.Duration, capacity int) *loginLimiter {
	if max <= 0 {
		max = DefaultLoginFailures
	}
	if window <= 0 {
		window = DefaultLoginWindow
	}
	return &loginLimiter{max: max, window: window, cap: capacity, keys: map[string]*failures{}}
}

// live drops the failures that left the window before now.
func (f *failures) live(now time.Time, window time.Duration) {
	i := 0
	for i < len(f.times) && !now.Before(f.times[i].Add(window)) {
		i++
	}
	f.times = f.times[i:]
}

// lockedUntil returns when the first of keys that is locked at now unlocks,
// or the zero time when none is locked.
func (l *loginLimiter) lockedUntil(now time.Time, keys ...string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var until time.Time
	for _, k := range keys {
		f, ok := l.keys[k]
		if !ok {
			continue
		}
		f.live(now, l.window)
		if len(f.times) >= l.max {
			if t := f.times[0].Add(l.window); t.After(until) {
				until = t
			}
		}
	}
	return until
}

// fail records a failure for every key and returns the keys this failure
// locked (those that just reached the limit) and until when.
func (l *loginLimiter) fail(now time.Time, keys ...string) (locked []string, until time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		f, ok := l.keys[k]
		if !ok {
			if len(l.keys) >= l.cap {
				l.evict(now)
			}
			f = &failures{times: make([]time.Time, 0, l.max)}
			l.keys[k] = f
		}
		f.live(now, l.window)
		if len(f.times) == l.max {
			// Already locked (a race with lockedUntil): keep the newest.
			f.times = append(f.times[:0], f.times[1:]...)
		}
		f.times = append(f.times, now)
		if len(f.times) == l.max {
			locked = append(locked, k)
			if t := f.times[0].Add(l.window); t.After(until) {
				until = t
			}
		}
	}
	return locked, until
}

// reset forgets the failures of keys (after a successful sign-in).
func (l *loginLimiter) reset(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		delete(l.keys, k)
	}
}

// evict makes room for one key; l.mu is held.
func (l *loginLimiter) evict(now time.Time) {
	for k, f := range l.keys {
		if f.live(now, l.window); len(f.times) == 0 {
			delete(l.keys, k)
		}
	}
	if len(l.keys) < l.cap {
		return
	}
	var (
		oldest  string
		oldestT time.Time
	)
	for k, f := range l.keys {
		if last := f.times[len(f.times)-1]; oldest == "" || last.Before(oldestT) {
			oldest, oldestT = k, last
		}
	}
	delete(l.keys, oldest)
}

// size is the number of keys tracked (tests).
func (l *loginLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// sourceKey is the limiter key of a client address: the address itself for
// IPv4, its /64 for IPv6 (one subscriber usually holds a whole /64).
func sourceKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return "ip:" + host
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return "ip:" + p.String()
	}
	return "ip:" + a.String()
}

// maxUserKey bounds the user name kept in a limiter key: the name comes
// from the form, which may be 64 KB.
const maxUserKey = 128

// userKey is the limiter key of a user name; case is folded so that
// "Admin" and "admin" share one count.
func userKey(name string) string {
	name = strings.ToLower(name)
	if len(name) > maxUserKey {
		name = name[:maxUserKey]
	}
	return "user:" + name
}

// tooManyLogins answers a locked sign-in with 429, Retry-After and the
// login form saying when to try again.
func (u *UI) tooManyLogins(w http.ResponseWriter, r *http.Request, d loginData, until time.Time) error {
	secs := int(math.Ceil(until.Sub(u.now()).Seconds()))
	secs = max(secs, 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	mins := (secs + 59) / 60
	return u.showLogin(w, r, http.StatusTooManyRequests, d,
		fmt.Sprintf("Too many failed sign-ins; try again in %d minute(s).", mins))
}

// loginLockout logs and audits a lockout once, when it starts.
func (u *UI) loginLockout(r *http.Request, name string, keys []string, until time.Time) {
	actor := actorOf(r)
	if len(name) > maxUserKey {
		name = name[:maxUserKey]
	}
	for _, k := range keys {
		u.log.Warn("console sign-in locked out", "key", k, "user", name, "remote", actor.Remote,
			"failures", u.logins.max, "window", u.logins.window, "until", until.UTC())
		// The audit entry names the locked key ("ip:…" or "user:…"); the
		// actor is the client that caused it.
		if err := u.st.AppendAudit(r.Context(), actor, "user.login.locked", k, nil,
			map[string]any{"failures": u.logins.max, "window": u.logins.window.String(), "until": until.UTC()}); err != nil {
			u.log.Warn("audit sign-in lockout", "err", err)
		}
	}
}
