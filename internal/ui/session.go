package ui

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/store"
)

// Cookie names. Over TLS the __Host- prefix makes the browser refuse the
// cookie unless it is Secure, host-only and Path=/, so a sibling subdomain
// cannot plant or shadow it.
const (
	sessionCookie    = "nocsoc_session"
	loginCSRFCookie  = "nocsoc_login"
	hostPrefix       = "__Host-"
	touchEvery       = time.Minute
	maxFormBytes     = 64 << 10
	minPasswordRunes = 10
)

type ctxKey struct{}

// session is the signed-in user of a request.
type session struct {
	sess  store.Session
	user  store.User
	token string
}

func sessionFrom(r *http.Request) *session {
	s, _ := r.Context().Value(ctxKey{}).(*session)
	return s
}

func (u *UI) cookieName(base string) string {
	if u.secure {
		return hostPrefix + base
	}
	return base
}

func (u *UI) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: u.cookieName(name), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: u.secure,
		// Lax: a link to the console from a chat message or an alert
		// e-mail opens signed in, while cross-site POSTs carry no cookie.
		SameSite: http.SameSiteLaxMode,
	})
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// lookup returns the request's live session, or nil.
func (u *UI) lookup(r *http.Request) (*session, error) {
	c, err := r.Cookie(u.cookieName(sessionCookie))
	if err != nil || c.Value == "" {
		return nil, nil
	}
	now := u.now()
	se, user, err := u.st.SessionByHash(r.Context(), auth.HashToken(c.Value), now)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// Touch at most once a minute per session, so browsing is not a
	// stream of writes.
	if now.Sub(se.LastSeenAt) >= touchEvery {
		if err := u.st.TouchSession(r.Context(), se.ID, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			u.log.Warn("touch session", "err", err)
		}
	}
	return &session{sess: se, user: user, token: c.Value}, nil
}

// authed guards a console handler: it needs a live session and the role
// need, and for every unsafe method a matching Origin (when sent) and the
// session's CSRF token in the "csrf" form field or the X-CSRF-Token header.
func (u *UI) authed(need string, h handlerFunc) http.Handler {
	return u.handle(func(w http.ResponseWriter, r *http.Request) error {
		s, err := u.lookup(r)
		if err != nil {
			return err
		}
		if s == nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				if r.Header.Get("Accept") == "text/event-stream" || strings.HasPrefix(r.URL.Path, "/events/") {
					return errorf(http.StatusUnauthorized, "Sign in first.")
				}
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return nil
			}
			return errorf(http.StatusUnauthorized, "Your session has ended; sign in again.")
		}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, s))
		if !safeMethod(r.Method) {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if err := u.checkCSRF(r, s.sess.CSRF); err != nil {
				return err
			}
		}
		if !auth.Allows(s.user.Role, need) {
			return errorf(http.StatusForbidden, "Your role (%s) may not do this; it needs %s.", s.user.Role, need)
		}
		return h(w, r)
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// checkCSRF verifies a state-changing request: the Origin, when the
// browser sends one, must be this host, and the token must match.
func (u *UI) checkCSRF(r *http.Request, want string) error {
	if o := r.Header.Get("Origin"); o != "" {
		ou, err := url.Parse(o)
		if err != nil || ou.Host != r.Host {
			return errorf(http.StatusForbidden, "Cross-site request refused.")
		}
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return errorf(http.StatusForbidden, "The form's security token is missing or stale; reload the page and try again.")
	}
	return nil
}

func actorOf(r *http.Request) store.Actor {
	a := store.Actor{Name: "system"}
	if s := sessionFrom(r); s != nil {
		a.Name = s.user.Name
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		a.Remote = host
	}
	return a
}

// localPath returns next when it is a path on this site, else "/noc":
// the login redirect must not become an open redirect.
func localPath(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/noc"
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return "/noc"
	}
	return next
}

type loginData struct {
	Name, Next, LoginCSRF string
}

func (u *UI) loginPage(w http.ResponseWriter, r *http.Request) error {
	s, err := u.lookup(r)
	if err != nil {
		return err
	}
	next := localPath(r.URL.Query().Get("next"))
	if s != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	}
	return u.showLogin(w, r, http.StatusOK, loginData{Next: next}, "")
}

// showLogin renders the login form with a fresh login CSRF token: a
// double-submit cookie, since there is no session to hold one yet. It
// stops a forged cross-site login into the attacker's account.
func (u *UI) showLogin(w http.ResponseWriter, r *http.Request, status int, d loginData, msg string) error {
	tok, err := randomToken()
	if err != nil {
		return err
	}
	u.setCookie(w, loginCSRFCookie, tok, 3600)
	d.LoginCSRF = tok
	return u.render(w, r, status, "login", Page{Title: "Sign in", Data: d, Error: msg})
}

func (u *UI) login(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return errorf(http.StatusBadRequest, "Unreadable form.")
	}
	d := loginData{Name: strings.TrimSpace(r.PostFormValue("name")), Next: localPath(r.PostFormValue("next"))}
	c, cerr := r.Cookie(u.cookieName(loginCSRFCookie))
	form := r.PostFormValue("csrf")
	if cerr != nil || form == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(form)) != 1 {
		return u.showLogin(w, r, http.StatusForbidden, d, "The sign-in form expired; please try again.")
	}
	pw := r.PostFormValue("password")
	switch {
	case d.Name == "":
		return u.showLogin(w, r, http.StatusUnprocessableEntity, d, "name: enter your user name.")
	case pw == "":
		return u.showLogin(w, r, http.StatusUnprocessableEntity, d, "password: enter your password.")
	}
	// A locked source or name is refused before the password is checked:
	// no guess is tested, and no hash is computed for it.
	keys := []string{sourceKey(r.RemoteAddr), userKey(d.Name)}
	if until := u.logins.lockedUntil(u.now(), keys...); !until.IsZero() {
		return u.tooManyLogins(w, r, d, until)
	}
	user, err := u.st.UserByName(r.Context(), d.Name)
	hash := user.PasswordHash
	if err != nil || hash == "" {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		// Spend the same time as a real check: no user enumeration.
		u.dummyOnce.Do(func() {
			if h, herr := auth.HashPassword("not a real password"); herr == nil {
				u.dummyHash = h
			}
		})
		hash = u.dummyHash
	}
	ok, verr := auth.VerifyPassword(hash, pw)
	if verr != nil {
		u.log.Error("verify password", "user", d.Name, "err", verr)
	}
	if err != nil || user.PasswordHash == "" || !ok || user.Disabled {
		u.log.Info("console sign-in failed", "user", d.Name, "remote", actorOf(r).Remote)
		if locked, until := u.logins.fail(u.now(), keys...); len(locked) > 0 {
			u.loginLockout(r, d.Name, locked, until)
			return u.tooManyLogins(w, r, d, until)
		}
		return u.showLogin(w, r, http.StatusUnauthorized, d, "Wrong user name or password.")
	}
	u.logins.reset(keys...)
	tok, err := randomToken()
	if err != nil {
		return err
	}
	csrf, err := randomToken()
	if err != nil {
		return err
	}
	now := u.now()
	if _, err := u.st.CreateSession(r.Context(), user.ID, auth.HashToken(tok), csrf, now, now.Add(store.SessionMaxAge)); err != nil {
		return err
	}
	actor := actorOf(r)
	actor.Name = user.Name
	if err := u.st.AppendAudit(r.Context(), actor, "user.login", "user:"+user.Name, nil, nil); err != nil {
		u.log.Warn("audit login", "err", err)
	}
	u.setCookie(w, sessionCookie, tok, int(store.SessionMaxAge/time.Second))
	u.setCookie(w, loginCSRFCookie, "", -1)
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
	return nil
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request) error {
	s := sessionFrom(r)
	if err := u.st.DeleteSession(r.Context(), auth.HashToken(s.token)); err != nil {
		return err
	}
	if err := u.st.AppendAudit(r.Context(), actorOf(r), "user.logout", "user:"+s.user.Name, nil, nil); err != nil {
		u.log.Warn("audit logout", "err", err)
	}
	u.setCookie(w, sessionCookie, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

func (u *UI) passwordPage(w http.ResponseWriter, r *http.Request) error {
	return u.render(w, r, http.StatusOK, "password", Page{Title: "Change password", Nav: "account"})
}

func (u *UI) changePassword(w http.ResponseWriter, r *http.Request) error {
	s := sessionFrom(r)
	cur, next, confirm := r.PostFormValue("current"), r.PostFormValue("new"), r.PostFormValue("confirm")
	fail := func(msg string) error {
		return u.render(w, r, http.StatusUnprocessableEntity, "password", Page{Title: "Change password", Nav: "account", Error: msg})
	}
	ok, err := auth.VerifyPassword(s.user.PasswordHash, cur)
	if err != nil && !errors.Is(err, auth.ErrMalformedHash) {
		return err
	}
	switch {
	case !ok:
		return fail("current: the current password is wrong.")
	case len([]rune(next)) < minPasswordRunes:
		return fail(fmt.Sprintf("new: use at least %d characters.", minPasswordRunes))
	case next != confirm:
		return fail("confirm: the two new passwords differ.")
	case next == cur:
		return fail("new: choose a password different from the current one.")
	}
	hash, err := auth.HashPassword(next)
	if err != nil {
		return err
	}
	if err := u.st.SetPassword(r.Context(), actorOf(r), s.user.ID, hash); err != nil {
		return err
	}
	// A session stolen before the change must not outlive the old password.
	n, err := u.st.DeleteUserSessions(r.Context(), s.user.ID, s.sess.ID)
	if err != nil {
		return err
	}
	msg := "Password changed."
	if n > 0 {
		msg += fmt.Sprintf(" %d other session(s) were signed out.", n)
	}
	return u.render(w, r, http.StatusOK, "password", Page{Title: "Change password", Nav: "account", Flash: msg})
}
