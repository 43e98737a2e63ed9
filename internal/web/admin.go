package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/maintenance"
	"github.com/nocsoc/nocsoc/internal/noc"
	"github.com/nocsoc/nocsoc/internal/store"
)

func idParam(r *http.Request) (int64, error) {
	v := r.PathValue("id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id < 1 {
		return 0, badRequest("id", "id must be a positive integer, got %q", v)
	}
	return id, nil
}

// Maintenance windows.

type winJSON struct {
	maintenance.Window
	Active bool       `json:"active"`
	Next   *time.Time `json:"next,omitempty"`
}

func (s *server) windowJSON(win maintenance.Window) winJSON {
	now := s.now()
	j := winJSON{Window: win, Active: win.ActiveAt(now)}
	if n, ok := win.Next(now); ok {
		n = n.UTC()
		j.Next = &n
	}
	return j
}

func (s *server) listWindows(w http.ResponseWriter, r *http.Request, p principal) error {
	ws := s.noc.Windows()
	out := make([]winJSON, 0, len(ws))
	for _, win := range ws {
		out = append(out, s.windowJSON(win))
	}
	writeJSON(w, http.StatusOK, map[string]any{"windows": out})
	return nil
}

func checkOneOff(win maintenance.Window) error {
	if win.Schedule == "" && win.Until != nil {
		return badRequest("until", "until applies only to recurring windows (with a schedule); a one-off window ends after its duration")
	}
	return nil
}

func (s *server) getWindow(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	win, err := s.noc.Window(id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.windowJSON(win))
	return nil
}

func (s *server) createWindow(w http.ResponseWriter, r *http.Request, p principal) error {
	var win maintenance.Window
	if err := decodeJSON(w, r, &win); err != nil {
		return err
	}
	if win.ID != 0 {
		return badRequest("id", "id is assigned by the server")
	}
	if err := checkOneOff(win); err != nil {
		return err
	}
	created, err := s.noc.CreateWindow(r.Context(), p.actor(), win)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, s.windowJSON(created))
	return nil
}

func (s *server) updateWindow(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	var win maintenance.Window
	if err := decodeJSON(w, r, &win); err != nil {
		return err
	}
	if win.ID != 0 && win.ID != id {
		return badRequest("id", "id %d does not match the URL's %d", win.ID, id)
	}
	win.ID = id
	if err := checkOneOff(win); err != nil {
		return err
	}
	updated, err := s.noc.UpdateWindow(r.Context(), p.actor(), win)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.windowJSON(updated))
	return nil
}

func (s *server) deleteWindow(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	if err := s.noc.DeleteWindow(r.Context(), p.actor(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Alerts.

func (s *server) listAlerts(w http.ResponseWriter, r *http.Request, p principal) error {
	q := r.URL.Query()
	f := store.AlertFilter{Status: q.Get("status"), Team: q.Get("team"), Severity: q.Get("severity"), Source: q.Get("source")}
	if f.Status != "" && f.Status != alert.StatusFiring && f.Status != alert.StatusResolved {
		return badRequest("status", "status must be firing or resolved, got %q", f.Status)
	}
	if f.Team != "" && f.Team != alert.TeamNOC && f.Team != alert.TeamSOC {
		return badRequest("team", "team must be noc or soc, got %q", f.Team)
	}
	if f.Severity != "" {
		ok := false
		for _, sv := range check.Severities {
			ok = ok || sv == f.Severity
		}
		if !ok {
			return badRequest("severity", "unknown severity %q (one of %s)", f.Severity, strings.Join(check.Severities, ", "))
		}
	}
	f.Integration = q.Get("integration")
	var err error
	if f.IncidentID, err = beforeParam(r, "incident", "an incident"); err != nil {
		return err
	}
	switch v := q.Get("suppressed"); v {
	case "":
	case "true", "false":
		b := v == "true"
		f.Suppressed = &b
	default:
		return badRequest("suppressed", "suppressed must be true or false, got %q", v)
	}
	limit, err := intParam(r, "limit", 100, 1000)
	if err != nil {
		return err
	}
	f.Limit = limit
	if v := q.Get("before"); v != "" {
		if f.BeforeID, err = strconv.ParseInt(v, 10, 64); err != nil {
			return badRequest("before", "before must be an alert id")
		}
	}
	as, err := s.st.ListAlerts(r.Context(), f)
	if err != nil {
		return err
	}
	if as == nil {
		as = []alert.Alert{}
	}
	resp := map[string]any{"alerts": as}
	if len(as) == limit {
		resp["next_before"] = as[len(as)-1].ID
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *server) getAlert(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	a, err := s.st.GetAlert(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

// Tokens. Any user manages their own tokens; an admin manages everyone's.

func (s *server) listTokens(w http.ResponseWriter, r *http.Request, p principal) error {
	uid := p.User.ID
	if p.User.Role == auth.RoleAdmin && r.URL.Query().Get("all") == "true" {
		uid = 0
	}
	ts, err := s.st.ListTokens(r.Context(), uid)
	if err != nil {
		return err
	}
	if ts == nil {
		ts = []store.Token{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": ts})
	return nil
}

func (s *server) createToken(w http.ResponseWriter, r *http.Request, p principal) error {
	var req struct {
		Name      string         `json:"name"`
		User      string         `json:"user"`
		ExpiresIn check.Duration `json:"expires_in"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Name) == "" {
		return badRequest("name", "name is required (a label saying what the token is for)")
	}
	if req.ExpiresIn < 0 {
		return badRequest("expires_in", "expires_in must not be negative")
	}
	owner := p.User
	if req.User != "" && req.User != p.User.Name {
		if p.User.Role != auth.RoleAdmin {
			return &HTTPError{Status: http.StatusForbidden, Msg: "only an admin may create tokens for another user"}
		}
		u, err := s.st.UserByName(r.Context(), req.User)
		if errors.Is(err, store.ErrNotFound) {
			return badRequest("user", "user %q does not exist", req.User)
		} else if err != nil {
			return err
		}
		owner = u
	}
	plain, hash, err := auth.NewToken()
	if err != nil {
		return err
	}
	t := store.Token{UserID: owner.ID, Name: req.Name, Hash: hash, Prefix: plain[:8], CreatedAt: s.now().UTC()}
	if req.ExpiresIn > 0 {
		exp := s.now().Add(req.ExpiresIn.D()).UTC()
		t.ExpiresAt = &exp
	}
	t, err = s.st.CreateToken(r.Context(), p.actor(), t)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": plain, "id": t.ID, "name": t.Name, "user": owner.Name, "expires_at": t.ExpiresAt,
		"note": "store this token now: it is shown only once"})
	return nil
}

func (s *server) revokeToken(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	t, err := s.st.GetToken(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && t.UserID != p.User.ID && p.User.Role != auth.RoleAdmin) {
		// The same answer for someone else's token and a missing one, so
		// ids cannot be probed.
		return &HTTPError{Status: http.StatusNotFound, Msg: fmt.Sprintf("token %d not found", id)}
	}
	if err != nil {
		return err
	}
	if t.RevokedAt != nil {
		return &HTTPError{Status: http.StatusConflict, Msg: "token already revoked"}
	}
	if err := s.st.RevokeToken(r.Context(), p.actor(), id, s.now().UTC()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Users.

func (s *server) listUsers(w http.ResponseWriter, r *http.Request, p principal) error {
	us, err := s.st.ListUsers(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": us})
	return nil
}

func (s *server) createUser(w http.ResponseWriter, r *http.Request, p principal) error {
	var req struct {
		Name     string `json:"name"`
		Role     string `json:"role"`
		Password string `json:"password"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if !validUserName(req.Name) {
		return badRequest("name", "name must be 1-64 letters, digits, '.', '_', '-' or '@'")
	}
	if !auth.ValidRole(req.Role) {
		return badRequest("role", "unknown role %q (one of %s)", req.Role, strings.Join(auth.Roles, ", "))
	}
	if len(req.Password) < 12 {
		return badRequest("password", "password must be at least 12 characters")
	}
	hash, err := auth.HashPassword(req.Password)
	if err != nil {
		return err
	}
	u, err := s.st.CreateUser(r.Context(), p.actor(), store.User{Name: req.Name, Role: req.Role, PasswordHash: hash, CreatedAt: s.now().UTC()})
	if errors.Is(err, store.ErrConflict) {
		return &HTTPError{Status: http.StatusConflict, Msg: fmt.Sprintf("user %q already exists", req.Name), Field: "name"}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, u)
	return nil
}

func validUserName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-@", c)) {
			return false
		}
	}
	return true
}

// Audit.

func (s *server) listAudit(w http.ResponseWriter, r *http.Request, p principal) error {
	q := r.URL.Query()
	f := store.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target")}
	limit, err := intParam(r, "limit", 100, 1000)
	if err != nil {
		return err
	}
	f.Limit = limit
	if v := q.Get("before"); v != "" {
		if f.BeforeID, err = strconv.ParseInt(v, 10, 64); err != nil {
			return badRequest("before", "before must be an audit entry id")
		}
	}
	if q.Get("from") != "" || q.Get("to") != "" {
		if f.From, f.To, err = s.timeRange(r, 24*time.Hour); err != nil {
			return err
		}
	}
	es, err := s.st.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	if es == nil {
		es = []store.AuditEntry{}
	}
	resp := map[string]any{"entries": es}
	if len(es) == limit {
		resp["next_before"] = es[len(es)-1].ID
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// Push heartbeats: POST /api/v1/push/{token}?status=fail&duration=12.5&msg=...
// (form fields work too). The token in the URL is the credential.
func (s *server) push(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "cannot parse form: " + err.Error()})
		return
	}
	hb := noc.Heartbeat{Token: r.PathValue("token"), OK: true, Message: r.Form.Get("msg")}
	switch st := r.Form.Get("status"); st {
	case "", "ok", "up", "success":
	case "fail", "failure", "down", "error":
		hb.OK = false
	default:
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "status must be ok or fail, got " + strconv.Quote(st), Field: "status"})
		return
	}
	if v := r.Form.Get("duration"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			hb.Duration = d
		} else if secs, err := strconv.ParseFloat(v, 64); err == nil {
			hb.Duration = time.Duration(secs * float64(time.Second))
		} else {
			hb.Duration = -1
		}
		if hb.Duration < 0 {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "duration must be seconds or a duration like 1m30s, got " + strconv.Quote(v), Field: "duration"})
			return
		}
	}
	name, err := s.noc.Heartbeat(r.Context(), hb)
	if errors.Is(err, noc.ErrUnknownPushToken) {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "unknown push token"})
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"check": name, "ok": hb.OK})
}
