package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/decision"
	"github.com/nocsoc/nocsoc/internal/store"
)

// registerDecisions adds the decision and bouncer administration API
// (/api/v1/decisions, /api/v1/bouncers) and the CrowdSec-compatible
// bouncer API (/v1/decisions, /v1/decisions/stream), which authenticates
// with a bouncer's X-Api-Key instead of a user token.
func (s *server) registerDecisions(mux *http.ServeMux, route func(string, string, handlerFunc)) {
	route("GET /api/v1/decisions", auth.RoleViewer, s.listDecisions)
	route("POST /api/v1/decisions", auth.RoleOperator, s.createDecision)
	route("GET /api/v1/decisions/{id}", auth.RoleViewer, s.getDecision)
	route("DELETE /api/v1/decisions/{id}", auth.RoleOperator, s.revokeDecision)
	route("GET /api/v1/bouncers", auth.RoleAdmin, s.listBouncers)
	route("POST /api/v1/bouncers", auth.RoleAdmin, s.createBouncer)
	route("DELETE /api/v1/bouncers/{id}", auth.RoleAdmin, s.revokeBouncer)
	// Endpoint labels select the endpoints of label-scoped decisions;
	// the agent reports its own (--label), an admin overrides them here.
	route("PUT /api/v1/endpoints/{id}/labels", auth.RoleAdmin, s.putEndpointLabels)
	mux.Handle("GET /v1/decisions/stream", s.bouncer(s.bouncerStream))
	mux.Handle("GET /v1/decisions", s.bouncer(s.bouncerDecisions))
}

// decisionPolicy is the self-lockout guard for a request: the configured
// policy plus the address the request reached this server on and the
// address of the person asking, so neither can be blocked through it.
func (s *server) decisionPolicy(r *http.Request) decision.Policy {
	p := s.policy
	if s.autoresp != nil {
		// The response service's policy follows config reloads.
		p = s.autoresp.Policy()
	}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(la.String()); err == nil {
			p = p.With(ap.Addr())
		}
	}
	if a, err := netip.ParseAddr(remoteIP(r)); err == nil {
		p = p.With(a)
	}
	return p
}

// decisionJSON is a decision as the admin API shows it: with its status
// and "all" for fleet-wide endpoints (null when labels select them).
// ResolvedEndpoints, in the answer to a create, says how many endpoints
// the decision reaches now.
type decisionJSON struct {
	decision.Decision
	Endpoints         any    `json:"endpoints"`
	Status            string `json:"status"`
	ResolvedEndpoints *int   `json:"resolved_endpoints,omitempty"`
}

func toDecisionJSON(d decision.Decision, now time.Time) decisionJSON {
	var eps any = "all"
	switch {
	case d.Endpoints != nil:
		eps = d.Endpoints
	case d.Labels != nil:
		eps = nil
	}
	return decisionJSON{Decision: d, Endpoints: eps, Status: d.Status(now)}
}

// resolvedEndpoints counts the enrolled, unrevoked endpoints d applies to
// now.
func (s *server) resolvedEndpoints(r *http.Request, d decision.Decision) (int, error) {
	if d.Endpoints != nil {
		return len(d.Endpoints), nil
	}
	eps, err := s.st.Endpoints(r.Context())
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range eps {
		if e.RevokedAt == nil && (d.Labels == nil || decision.MatchLabels(d.Labels, e.Labels)) {
			n++
		}
	}
	return n, nil
}

// putEndpointLabels replaces the admin-set labels of an endpoint:
// {"labels": {"role": "web", "env": ""}}. They win over the agent's; an
// empty value removes the agent's label of that key. Audited as
// endpoint.labels.
func (s *server) putEndpointLabels(w http.ResponseWriter, r *http.Request, p principal) error {
	var req struct {
		Labels map[string]string `json:"labels"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Labels == nil {
		return badRequest("labels", "labels is required: an object of label keys to values ({} clears the admin labels)")
	}
	e, err := s.st.SetEndpointLabels(r.Context(), p.actor(), r.PathValue("id"), req.Labels)
	if err != nil {
		return err
	}
	if s.autoresp != nil {
		s.autoresp.Kick() // label-scoped blocks follow the new labels now
	}
	writeJSON(w, http.StatusOK, map[string]any{"endpoint": e})
	return nil
}

func (s *server) createDecision(w http.ResponseWriter, r *http.Request, p principal) error {
	var req decision.Request
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	now := s.decisionNow().UTC()
	d, err := s.decisionPolicy(r).Validate(req, p.User.Name, now)
	var fe *decision.FieldError
	if errors.As(err, &fe) {
		return badRequest(fe.Field, "%s", fe.Error())
	}
	if err != nil {
		return err
	}
	d, err = s.st.CreateDecision(r.Context(), p.actor(), d)
	if err != nil {
		return err
	}
	out := toDecisionJSON(d, now)
	if n, err := s.resolvedEndpoints(r, d); err == nil {
		out.ResolvedEndpoints = &n
	}
	if s.autoresp != nil {
		s.autoresp.Kick()
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *server) listDecisions(w http.ResponseWriter, r *http.Request, p principal) error {
	q := r.URL.Query()
	history := false
	if v := q.Get("history"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return badRequest("history", "history must be true or false, not %q", v)
		}
		history = b
	}
	n := 0
	if v := q.Get("limit"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			return badRequest("limit", "limit must be a positive integer, not %q", v)
		}
	}
	now := s.decisionNow().UTC()
	ds, err := s.st.ListDecisions(r.Context(), now, history, n)
	if err != nil {
		return err
	}
	out := make([]decisionJSON, 0, len(ds))
	for _, d := range ds {
		out = append(out, toDecisionJSON(d, now))
	}
	writeJSON(w, http.StatusOK, map[string]any{"decisions": out})
	return nil
}

func decisionPathID(r *http.Request) (int64, error) {
	v := r.PathValue("id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id < 1 {
		return 0, badRequest("id", "id must be a positive integer, not %q", v)
	}
	return id, nil
}

func (s *server) getDecision(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := decisionPathID(r)
	if err != nil {
		return err
	}
	d, err := s.st.GetDecision(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toDecisionJSON(d, s.decisionNow().UTC()))
	return nil
}

func (s *server) revokeDecision(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := decisionPathID(r)
	if err != nil {
		return err
	}
	now := s.decisionNow().UTC()
	d, err := s.st.RevokeDecision(r.Context(), p.actor(), id, now)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toDecisionJSON(d, now))
	return nil
}

func (s *server) listBouncers(w http.ResponseWriter, r *http.Request, p principal) error {
	bs, err := s.st.ListBouncers(r.Context())
	if err != nil {
		return err
	}
	if bs == nil {
		bs = []store.Bouncer{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"bouncers": bs})
	return nil
}

func (s *server) createBouncer(w http.ResponseWriter, r *http.Request, p principal) error {
	var req struct {
		Name      string         `json:"name"`
		Endpoint  string         `json:"endpoint"`
		ExpiresIn check.Duration `json:"expires_in"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Name) == "" {
		return badRequest("name", "name is required (which bouncer this key is for)")
	}
	if req.ExpiresIn < 0 {
		return badRequest("expires_in", "expires_in must not be negative")
	}
	plain, hash, err := auth.NewToken()
	if err != nil {
		return err
	}
	now := s.decisionNow().UTC()
	b := store.Bouncer{Name: strings.TrimSpace(req.Name), KeyHash: hash, KeyPrefix: plain[:8], Endpoint: req.Endpoint, CreatedAt: now}
	if req.ExpiresIn > 0 {
		exp := now.Add(req.ExpiresIn.D())
		b.ExpiresAt = &exp
	}
	b, err = s.st.CreateBouncer(r.Context(), p.actor(), b)
	if err != nil {
		return err
	}
	// The key is shown here once; only its hash is kept.
	writeJSON(w, http.StatusCreated, map[string]any{"bouncer": b, "api_key": plain})
	return nil
}

func (s *server) revokeBouncer(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := decisionPathID(r)
	if err != nil {
		return err
	}
	if err := s.st.RevokeBouncer(r.Context(), p.actor(), id, s.decisionNow().UTC()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// The CrowdSec-compatible bouncer API. Replies copy CrowdSec LAPI: errors
// are {"message": "..."}, a missing, unknown, revoked or expired key is a
// 403 "access forbidden", and empty lists are JSON null.

type bouncerHandler func(w http.ResponseWriter, r *http.Request, b store.Bouncer) error

func (s *server) bouncer(h bouncerHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimSpace(r.Header.Get("X-Api-Key"))
		var b store.Bouncer
		err := errors.New("no key")
		if key != "" {
			b, err = s.st.BouncerByKeyHash(r.Context(), auth.HashToken(key))
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) && key != "" {
			s.log.Error("bouncer lookup", "err", err)
			writeCrowdSec(w, http.StatusInternalServerError, crowdSecError{Message: "internal error"})
			return
		}
		if err != nil || !b.Usable(s.decisionNow()) {
			writeCrowdSec(w, http.StatusForbidden, crowdSecError{Message: "access forbidden"})
			return
		}
		if err := h(w, r, b); err != nil {
			var he *HTTPError
			if errors.As(err, &he) {
				writeCrowdSec(w, he.Status, crowdSecError{Message: he.Msg})
				return
			}
			s.log.Error("bouncer request failed", "path", r.URL.Path, "bouncer", b.Name, "err", err)
			writeCrowdSec(w, http.StatusInternalServerError, crowdSecError{Message: "internal error"})
		}
	})
}

type crowdSecError struct {
	Message string `json:"message"`
}

// writeCrowdSec writes compact JSON: a bouncer's startup reply can hold
// tens of thousands of decisions, and indentation would double it.
func writeCrowdSec(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, `{"message":"internal error"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func bouncerBoolParam(q url.Values, name string, def bool) (bool, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest(name, "%s must be true or false, not %q", name, v)
	}
	return b, nil
}

func bouncerListParam(q url.Values, name string) []string {
	var out []string
	for _, v := range q[name] {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, strings.ToLower(p))
			}
		}
	}
	return out
}

// streamFilter applies the optional filters of CrowdSec's stream
// endpoint: scopes (default "ip,range"), origins, scenarios_containing
// and scenarios_not_containing.
type streamFilter struct {
	scopes, origins, contain, notContain []string
}

func (f streamFilter) match(d decision.Decision) bool {
	ok := false
	for _, sc := range f.scopes {
		if sc == d.Scope {
			ok = true
		}
	}
	if !ok {
		return false
	}
	if len(f.origins) > 0 {
		ok = false
		for _, o := range f.origins {
			if o == decision.CrowdSecOrigin {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	sc := strings.ToLower(d.Reason)
	if len(f.contain) > 0 {
		ok = false
		for _, c := range f.contain {
			if strings.Contains(sc, c) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	for _, c := range f.notContain {
		if strings.Contains(sc, c) {
			return false
		}
	}
	return true
}

func crowdSecList(ds []decision.Decision, keep func(decision.Decision) bool, now time.Time) []decision.CrowdSec {
	var out []decision.CrowdSec
	for _, d := range ds {
		if keep(d) {
			out = append(out, d.ToCrowdSec(now))
		}
	}
	return out
}

func (s *server) bouncerStream(w http.ResponseWriter, r *http.Request, b store.Bouncer) error {
	q := r.URL.Query()
	startup, err := bouncerBoolParam(q, "startup", false)
	if err != nil {
		return err
	}
	f := streamFilter{scopes: bouncerListParam(q, "scopes"), origins: bouncerListParam(q, "origins"),
		contain: bouncerListParam(q, "scenarios_containing"), notContain: bouncerListParam(q, "scenarios_not_containing")}
	if len(f.scopes) == 0 {
		f.scopes = []string{decision.ScopeIP, decision.ScopeRange}
	}
	now := s.decisionNow().UTC()
	added, deleted, err := s.st.DecisionStream(r.Context(), b, startup, now, remoteIP(r))
	if err != nil {
		return err
	}
	writeCrowdSec(w, http.StatusOK, struct {
		New     []decision.CrowdSec `json:"new"`
		Deleted []decision.CrowdSec `json:"deleted"`
	}{crowdSecList(added, f.match, now), crowdSecList(deleted, f.match, now)})
	return nil
}

func (s *server) bouncerDecisions(w http.ResponseWriter, r *http.Request, b store.Bouncer) error {
	q := r.URL.Query()
	var f decision.Filter
	if v := q.Get("ip"); v != "" {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return badRequest("ip", "unable to parse ip %q", v)
		}
		f.IP = a
	}
	if v := q.Get("range"); v != "" {
		pr, err := netip.ParsePrefix(v)
		if err != nil {
			return badRequest("range", "unable to parse range %q", v)
		}
		f.Range = pr.Masked()
	}
	contains, err := bouncerBoolParam(q, "contains", true)
	if err != nil {
		return err
	}
	f.Contains = contains
	f.Scope, f.Value, f.Type = strings.ToLower(q.Get("scope")), q.Get("value"), q.Get("type")
	now := s.decisionNow().UTC()
	ds, err := s.st.ActiveDecisionsFor(r.Context(), b.Endpoint, now)
	if err != nil {
		return err
	}
	// CrowdSec answers "null", not "[]", when nothing matches.
	writeCrowdSec(w, http.StatusOK, crowdSecList(ds, f.Match, now))
	return nil
}

// decisionNow is the clock of decisions and bouncer keys.
func (s *server) decisionNow() time.Time {
	if s.decisionClock != nil {
		return s.decisionClock()
	}
	return s.now()
}

// defaultDecisionPolicy allow-lists loopback and the host of the public
// URL when it is an IP address.
func defaultDecisionPolicy(publicURL string) decision.Policy {
	var addrs []netip.Addr
	if u, err := url.Parse(publicURL); err == nil {
		if a, err := netip.ParseAddr(u.Hostname()); err == nil {
			addrs = append(addrs, a)
		}
	}
	return decision.DefaultPolicy(addrs...)
}
