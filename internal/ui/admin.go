package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/notify"
	"github.com/nocsoc/nocsoc/internal/store"
)

// auditPage is how many audit entries one page shows.
const auditPage = 50

// AdminData is the data of every admin tab; Tab says which is shown.
type AdminData struct {
	Tab          string
	Tabs         []string
	Roles        []string
	Users        []store.User
	Tokens       []store.Token
	Channels     []notify.Channel
	Integrations []alert.Integration
	IntTypes     []string
	Audit        []store.AuditEntry
	Actor        string
	Action       string
	NextAudit    string
	// Secret is a just-created token or integration key, shown once.
	Secret, SecretFor string
}

var adminTabs = []string{"users", "tokens", "channels", "integrations", "audit"}

// adminData loads the tab's rows.
func (u *UI) adminData(ctx context.Context, tab string, q url.Values) (*AdminData, error) {
	d := &AdminData{Tab: tab, Tabs: adminTabs, Roles: auth.Roles,
		IntTypes: []string{alert.IntegrationEvents, alert.IntegrationAlertmanager, alert.IntegrationWebhook}}
	var err error
	switch tab {
	case "users":
		d.Users, err = u.ext.ops.ListUsers(ctx)
	case "tokens":
		if d.Tokens, err = u.ext.ops.ListTokens(ctx, 0); err == nil {
			d.Users, err = u.ext.ops.ListUsers(ctx)
		}
	case "channels":
		if u.ext.resp != nil {
			d.Channels, err = u.ext.resp.Channels(ctx)
		}
	case "integrations":
		d.Integrations, err = u.ext.ops.ListIntegrations(ctx)
	case "audit":
		d.Actor, d.Action = strings.TrimSpace(q.Get("actor")), strings.TrimSpace(q.Get("action"))
		f := store.AuditFilter{Actor: d.Actor, Action: d.Action, Limit: auditPage}
		if v := q.Get("before"); v != "" {
			if f.BeforeID, err = strconv.ParseInt(v, 10, 64); err != nil || f.BeforeID <= 0 {
				return nil, errorf(http.StatusUnprocessableEntity, "before: must be a positive entry id, got %q.", v)
			}
		}
		if d.Audit, err = u.ext.ops.ListAudit(ctx, f); err == nil && len(d.Audit) == auditPage {
			nv := url.Values{"actor": {d.Actor}, "action": {d.Action}, "before": {strconv.FormatInt(d.Audit[len(d.Audit)-1].ID, 10)}}
			d.NextAudit = "/admin/audit?" + nv.Encode()
		}
	default:
		return nil, errorf(http.StatusNotFound, "No such admin page.")
	}
	return d, err
}

func (u *UI) showAdmin(w http.ResponseWriter, r *http.Request, status int, tab, flash, msg string, mod func(*AdminData)) error {
	if err := u.needOps(); err != nil {
		return err
	}
	d, err := u.adminData(r.Context(), tab, r.URL.Query())
	if err != nil {
		return err
	}
	if mod != nil {
		mod(d)
	}
	return u.render(w, r, status, "admin", Page{Title: "Admin · " + tab, Nav: "admin", Data: d, Flash: flash, Error: msg})
}

func (u *UI) adminPage(w http.ResponseWriter, r *http.Request) error {
	flash := ""
	if v := r.URL.Query().Get("done"); v != "" {
		flash = doneMessages[v]
	}
	return u.showAdmin(w, r, http.StatusOK, r.PathValue("tab"), flash, "", nil)
}

var doneMessages = map[string]string{
	"user": "User created.", "role": "Role changed.", "disabled": "User disabled; their sessions ended.",
	"enabled": "User enabled.", "revoked": "Token revoked.", "int-disabled": "Integration disabled.",
}

// storeError turns a store validation or conflict error into the form's
// message (422/409); anything else stays a 500.
func storeError(err error) (int, string, bool) {
	var fe *store.FieldError
	switch {
	case errors.As(err, &fe):
		return http.StatusUnprocessableEntity, fe.Error(), true
	case errors.Is(err, store.ErrConflict):
		return http.StatusConflict, "name: already taken.", true
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, "Not found (it may have been deleted).", true
	}
	return 0, "", false
}

func (u *UI) adminFail(w http.ResponseWriter, r *http.Request, tab string, err error) error {
	if st, msg, ok := storeError(err); ok {
		return u.showAdmin(w, r, st, tab, "", msg, nil)
	}
	return err
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, errorf(http.StatusNotFound, "No such item.")
	}
	return id, nil
}

func (u *UI) createUser(w http.ResponseWriter, r *http.Request) error {
	if err := u.needOps(); err != nil {
		return err
	}
	name, role, pw := strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("role"), r.PostFormValue("password")
	fail := func(msg string) error {
		return u.showAdmin(w, r, http.StatusUnprocessableEntity, "users", "", msg, nil)
	}
	if !auth.ValidRole(role) {
		return fail("role: choose admin, operator or viewer.")
	}
	if pw != "" && len([]rune(pw)) < minPasswordRunes {
		return fail(fmt.Sprintf("password: use at least %d characters (or none for a token-only user).", minPasswordRunes))
	}
	usr := store.User{Name: name, Role: role, CreatedAt: u.now().UTC()}
	if pw != "" {
		h, err := auth.HashPassword(pw)
		if err != nil {
			return err
		}
		usr.PasswordHash = h
	}
	if _, err := u.ext.ops.CreateUser(r.Context(), actorOf(r), usr); err != nil {
		return u.adminFail(w, r, "users", err)
	}
	http.Redirect(w, r, "/admin/users?done=user", http.StatusSeeOther)
	return nil
}

func (u *UI) userAction(w http.ResponseWriter, r *http.Request) error {
	if err := u.needOps(); err != nil {
		return err
	}
	id, err := pathID(r)
	if err != nil {
		return err
	}
	ctx, actor := r.Context(), actorOf(r)
	if me := sessionFrom(r); me != nil && me.user.ID == id {
		// An admin locking themselves out leaves nobody to undo it.
		return u.showAdmin(w, r, http.StatusConflict, "users", "", "You cannot change your own role or disable yourself here.", nil)
	}
	done := ""
	switch r.PathValue("action") {
	case "role":
		role := r.PostFormValue("role")
		if !auth.ValidRole(role) {
			return u.showAdmin(w, r, http.StatusUnprocessableEntity, "users", "", "role: choose admin, operator or viewer.", nil)
		}
		err, done = u.ext.ops.SetRole(ctx, actor, id, role), "role"
	case "disable":
		err, done = u.ext.ops.SetUserDisabled(ctx, actor, id, true), "disabled"
	case "enable":
		err, done = u.ext.ops.SetUserDisabled(ctx, actor, id, false), "enabled"
	default:
		return errorf(http.StatusNotFound, "No such action.")
	}
	if err != nil {
		return u.adminFail(w, r, "users", err)
	}
	http.Redirect(w, r, "/admin/users?done="+done, http.StatusSeeOther)
	return nil
}

// createToken makes an API token and shows it once, in the response to
// the POST (never in a URL, so it is in no history or log).
func (u *UI) createToken(w http.ResponseWriter, r *http.Request) error {
	if err := u.needOps(); err != nil {
		return err
	}
	ctx := r.Context()
	name, owner := strings.TrimSpace(r.PostFormValue("name")), strings.TrimSpace(r.PostFormValue("user"))
	fail := func(msg string) error {
		return u.showAdmin(w, r, http.StatusUnprocessableEntity, "tokens", "", msg, nil)
	}
	if name == "" || len(name) > 128 {
		return fail("name: required, a label saying what the token is for (at most 128 characters).")
	}
	var days int
	if v := strings.TrimSpace(r.PostFormValue("expires_days")); v != "" {
		var err error
		if days, err = strconv.Atoi(v); err != nil || days < 0 || days > 3650 {
			return fail(fmt.Sprintf("expires_days: a number of days from 0 (never) to 3650, got %q.", v))
		}
	}
	users, err := u.ext.ops.ListUsers(ctx)
	if err != nil {
		return err
	}
	var uid int64
	for _, us := range users {
		if strings.EqualFold(us.Name, owner) {
			uid, owner = us.ID, us.Name
		}
	}
	if uid == 0 {
		return fail(fmt.Sprintf("user: no user named %q.", owner))
	}
	plain, hash, err := auth.NewToken()
	if err != nil {
		return err
	}
	t := store.Token{UserID: uid, Name: name, Hash: hash, Prefix: plain[:8], CreatedAt: u.now().UTC()}
	if days > 0 {
		exp := u.now().Add(time.Duration(days) * 24 * time.Hour).UTC()
		t.ExpiresAt = &exp
	}
	if _, err := u.ext.ops.CreateToken(ctx, actorOf(r), t); err != nil {
		return u.adminFail(w, r, "tokens", err)
	}
	return u.showAdmin(w, r, http.StatusOK, "tokens", "Token created. Copy it now: it is shown only this once.", "",
		func(d *AdminData) { d.Secret, d.SecretFor = plain, name+" ("+owner+")" })
}

func (u *UI) revokeToken(w http.ResponseWriter, r *http.Request) error {
	if err := u.needOps(); err != nil {
		return err
	}
	id, err := pathID(r)
	if err != nil {
		return err
	}
	t, err := u.ext.ops.GetToken(r.Context(), id)
	if err != nil {
		return u.adminFail(w, r, "tokens", err)
	}
	if t.RevokedAt != nil {
		return u.showAdmin(w, r, http.StatusConflict, "tokens", "", "That token is already revoked.", nil)
	}
	if err := u.ext.ops.RevokeToken(r.Context(), actorOf(r), id, u.now().UTC()); err != nil {
		return u.adminFail(w, r, "tokens", err)
	}
	http.Redirect(w, r, "/admin/tokens?done=revoked", http.StatusSeeOther)
	return nil
}

// testChannel sends one test message synchronously and shows the result;
// it is audited (channel.test) but not retried nor in the delivery log.
func (u *UI) testChannel(w http.ResponseWriter, r *http.Request) error {
	if err := u.needOps(); err != nil {
		return err
	}
	if u.ext.resp == nil {
		return errorf(http.StatusServiceUnavailable, "No notification channels: the incident service is not running.")
	}
	name := r.PathValue("name")
	ch, ok := u.ext.resp.ChannelByName(r.Context(), name)
	if !ok {
		return errorf(http.StatusNotFound, "No channel named %q.", name)
	}
	actor := actorOf(r)
	msg := notify.Message{Event: "test", Title: "nocsoc test notification", Severity: "info", Team: alert.TeamNOC, Status: "test",
		Summary: "sent by " + actor.Name + " from the console to check the channel " + ch.Name, Time: u.now().UTC()}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	status, sendErr := u.ext.sender.Send(ctx, ch, msg)
	if err := u.st.AppendAudit(r.Context(), actor, "channel.test", "channel:"+ch.Name, nil,
		map[string]any{"ok": sendErr == nil, "http_status": status}); err != nil {
		return err
	}
	if sendErr != nil {
		return u.showAdmin(w, r, http.StatusBadGateway, "channels", "", fmt.Sprintf("Test message to %s failed: %v", ch.Name, sendErr), nil)
	}
	flash := "Test message sent to " + ch.Name + "."
	if status != 0 {
		flash += fmt.Sprintf(" The receiver answered HTTP %d.", status)
	}
	return u.showAdmin(w, r, http.StatusOK, "channels", flash, "", nil)
}

// createIntegration makes an intake endpoint and shows its key once.
func (u *UI) createIntegration(w http.ResponseWriter, r *http.Request) error {
	if err := u.needOps(); err != nil {
		return err
	}
	name, typ := strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("type")
	fail := func(msg string) error {
		return u.showAdmin(w, r, http.StatusUnprocessableEntity, "integrations", "", msg, nil)
	}
	switch typ {
	case alert.IntegrationEvents, alert.IntegrationAlertmanager, alert.IntegrationWebhook:
	default:
		return fail(fmt.Sprintf("type: choose events, alertmanager or webhook, got %q.", typ))
	}
	if name == "" || len(name) > 128 {
		return fail("name: required (1-128 characters).")
	}
	plain, hash, err := auth.NewToken()
	if err != nil {
		return err
	}
	if _, err := u.ext.ops.CreateIntegration(r.Context(), actorOf(r),
		alert.Integration{Name: name, Type: typ, KeyHash: hash, KeyPrefix: plain[:8], CreatedAt: u.now().UTC()}); err != nil {
		return u.adminFail(w, r, "integrations", err)
	}
	return u.showAdmin(w, r, http.StatusOK, "integrations", "Integration created. Copy its key now: it is shown only this once.", "",
		func(d *AdminData) { d.Secret, d.SecretFor = plain, name+" ("+typ+")" })
}

func (u *UI) disableIntegration(w http.ResponseWriter, r *http.Request) error {
	if err := u.needOps(); err != nil {
		return err
	}
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := u.ext.ops.DisableIntegration(r.Context(), actorOf(r), id); err != nil {
		return u.adminFail(w, r, "integrations", err)
	}
	http.Redirect(w, r, "/admin/integrations?done=int-disabled", http.StatusSeeOther)
	return nil
}
