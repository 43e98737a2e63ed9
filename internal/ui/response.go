package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/decision"
	"github.com/nocsoc/nocsoc/internal/store"
)

// DecisionStore keeps active-response decisions. *store.Store implements
// it; every change takes the Actor, so the audit log records who blocked
// or revoked what.
type DecisionStore interface {
	CreateDecision(ctx context.Context, actor store.Actor, d decision.Decision) (decision.Decision, error)
	GetDecision(ctx context.Context, id int64) (decision.Decision, error)
	RevokeDecision(ctx context.Context, actor store.Actor, id int64, now time.Time) (decision.Decision, error)
	ListDecisions(ctx context.Context, now time.Time, history bool, limit int) ([]decision.Decision, error)
}

// respState is what the decision pages use; a nil store makes them answer
// 503.
type respState struct {
	st     DecisionStore
	policy decision.Policy
	now    func() time.Time
	// ar is the active-response service; nil means blocks are stored as
	// decisions directly and there are no approvals (response_actions.go).
	ar Responder
}

func (u *UI) initResponse(o Options) {
	s := respState{policy: decision.DefaultPolicy(), now: o.DecisionClock, ar: o.Responder}
	s.st, _ = o.Store.(DecisionStore)
	switch {
	case o.DecisionPolicy != nil:
		s.policy = *o.DecisionPolicy
	case s.ar != nil:
		s.policy = s.ar.Policy()
	}
	if s.now == nil {
		s.now = u.now
	}
	u.resp = s
}

func (u *UI) decisionsReady() error {
	if u.resp.st == nil {
		return errorf(http.StatusServiceUnavailable, "Decisions need the state store, which this server was started without.")
	}
	return nil
}

// responseRoutes registers the active-response pages: decisions (list,
// create, revoke), host actions and approvals.
func (u *UI) responseRoutes(m *http.ServeMux) {
	m.Handle("GET /decisions", u.authed(auth.RoleViewer, u.decisionsPage))
	m.Handle("POST /decisions", u.authed(auth.RoleOperator, u.createDecision))
	m.Handle("POST /decisions/{id}/revoke", u.authed(auth.RoleOperator, u.revokeDecision))
	u.responseActionRoutes(m) // response_actions.go
}

// DecisionForm is the new-decision form's state.
type DecisionForm struct {
	Value, Duration, Reason, Endpoints string
	// Labels is a label selector, "role=web, env=prod".
	Labels string
}

// DecisionRow is a decision with what the page shows about it.
type DecisionRow struct {
	decision.Decision
	Status string
	// Where names the enforcing endpoints ("all endpoints" or hostnames).
	Where string
}

// DecisionsData is the decisions page's data.
type DecisionsData struct {
	Active  []DecisionRow
	History []DecisionRow
	Form    DecisionForm
	// Approvals is set when the active-response service is connected;
	// Pending counts the requests waiting for an approver.
	Approvals bool
	Pending   int
}

// historyShown bounds the history table; the API pages further.
const historyShown = 100

func (u *UI) decisionsData(ctx context.Context) (DecisionsData, error) {
	now := u.resp.now().UTC()
	d := DecisionsData{Form: DecisionForm{Duration: "4h", Endpoints: "all"}}
	active, err := u.resp.st.ListDecisions(ctx, now, false, 0)
	if err != nil {
		return d, err
	}
	hist, err := u.resp.st.ListDecisions(ctx, now, true, historyShown)
	if err != nil {
		return d, err
	}
	names := u.endpointNames(ctx)
	row := func(x decision.Decision) DecisionRow {
		r := DecisionRow{Decision: x, Status: x.Status(now), Where: "all endpoints"}
		if x.Labels != nil {
			r.Where = x.DescribeScope()
		}
		if x.Endpoints != nil {
			hs := make([]string, len(x.Endpoints))
			for i, id := range x.Endpoints {
				hs[i] = id
				if n, ok := names[id]; ok {
					hs[i] = n
				}
			}
			r.Where = strings.Join(hs, ", ")
		}
		return r
	}
	for _, x := range active {
		d.Active = append(d.Active, row(x))
	}
	for _, x := range hist {
		d.History = append(d.History, row(x))
	}
	if u.resp.ar != nil {
		d.Approvals = true
		pending, err := u.resp.ar.List(ctx, store.ResponseFilter{Status: "pending", Limit: 1000})
		if err != nil {
			return d, err
		}
		d.Pending = len(pending)
	}
	return d, nil
}

// endpointNames maps endpoint ids to hostnames when the fleet is
// connected; ids show as they are otherwise.
func (u *UI) endpointNames(ctx context.Context) map[string]string {
	out := map[string]string{}
	if u.fleet.f == nil {
		return out
	}
	eps, err := u.fleet.f.Endpoints(ctx)
	if err != nil {
		u.log.Warn("endpoint names", "err", err)
		return out
	}
	for _, e := range eps {
		out[e.ID] = e.Hostname
	}
	return out
}

func (u *UI) decisionsPage(w http.ResponseWriter, r *http.Request) error {
	if err := u.decisionsReady(); err != nil {
		return err
	}
	d, err := u.decisionsData(r.Context())
	if err != nil {
		return err
	}
	p := Page{Title: "Decisions", Nav: "decisions", Data: d}
	u.takeFlash(w, r, &p)
	return u.render(w, r, http.StatusOK, "decisions", p)
}

// decisionPolicy is the guard for one request: the configured policy plus
// the address the request reached this server on and the requester's own
// address, so an operator can block neither through the console.
func (u *UI) decisionPolicy(r *http.Request) decision.Policy {
	p := u.resp.policy
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(la.String()); err == nil {
			p = p.With(ap.Addr())
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if a, err := netip.ParseAddr(host); err == nil {
			p = p.With(a)
		}
	}
	return p
}

// createDecision makes a decision from the decisions page's form or from
// a "block this IP" button on an alert (alert=<id>) or an incident
// (incident=<id>). A button fills in what the form leaves empty: the
// address from the alert's source.ip label, the enforcing endpoint from
// its host.name label when that names one enrolled endpoint, and a reason
// naming the alert or incident. Bad input changes nothing: the form page
// comes back with the message (422), or a button's page with it as a
// flash.
func (u *UI) createDecision(w http.ResponseWriter, r *http.Request) error {
	if err := u.decisionsReady(); err != nil {
		return err
	}
	ctx := r.Context()
	f := DecisionForm{Value: strings.TrimSpace(r.PostFormValue("value")), Duration: strings.TrimSpace(r.PostFormValue("duration")),
		Reason: strings.TrimSpace(r.PostFormValue("reason")), Endpoints: strings.TrimSpace(r.PostFormValue("endpoints")),
		Labels: strings.TrimSpace(r.PostFormValue("labels"))}
	back := r.PostFormValue("back")
	if back != "" && localPath(back) != back {
		back = ""
	}
	refuse := func(msg string) error {
		if back != "" {
			u.setFlash(w, true, "Not blocked: "+msg)
			http.Redirect(w, r, back, http.StatusSeeOther)
			return nil
		}
		d, err := u.decisionsData(ctx)
		if err != nil {
			return err
		}
		d.Form = f
		return u.render(w, r, http.StatusUnprocessableEntity, "decisions", Page{Title: "Decisions", Nav: "decisions", Data: d, Error: msg})
	}
	req := decision.Request{Value: f.Value, Duration: f.Duration, Reason: f.Reason}
	host := ""
	if s := r.PostFormValue("alert"); s != "" {
		a, err := u.formAlert(ctx, s)
		var fe *decision.FieldError
		if errors.As(err, &fe) {
			return refuse(fe.Error())
		}
		if err != nil {
			return err
		}
		if req.Value == "" {
			req.Value = a.Labels["source.ip"]
		}
		if req.Value == "" {
			return refuse(fmt.Sprintf("value: alert %d has no source.ip label; enter the address on the decisions page", a.ID))
		}
		if req.Reason == "" {
			req.Reason = fmt.Sprintf("alert #%d: %s", a.ID, a.Title)
		}
		host = a.Labels["host.name"]
		if a.IncidentID > 0 {
			req.IncidentID = a.IncidentID
		}
	}
	if s := r.PostFormValue("incident"); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return refuse(fmt.Sprintf("incident: %q is not an incident id", s))
		}
		if u.soc.st == nil {
			return refuse("incident: the incident service is not connected")
		}
		i, err := u.soc.st.GetIncident(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return refuse(fmt.Sprintf("incident: no incident %d", id))
		}
		if err != nil {
			return err
		}
		req.IncidentID = id
		if req.Reason == "" {
			req.Reason = fmt.Sprintf("incident #%d: %s", i.ID, i.Title)
		}
		if host == "" {
			host = i.Labels["host.name"]
		}
	}
	var fe *decision.FieldError
	if f.Labels != "" {
		// A label selector replaces the endpoints field ("all", its
		// default, or empty); naming both is refused.
		if f.Endpoints != "" && !strings.EqualFold(f.Endpoints, "all") {
			return refuse("labels: give either endpoints or labels, not both")
		}
		raw, err := formLabels(f.Labels)
		if err != nil {
			return refuse(err.Error())
		}
		req.Labels = raw
	} else {
		eps, err := u.formEndpoints(ctx, f.Endpoints, host)
		if errors.As(err, &fe) {
			return refuse(fe.Error())
		}
		if err != nil {
			return err
		}
		req.Endpoints = eps
	}
	actor := actorOf(r)
	now := u.resp.now().UTC()
	d, err := u.decisionPolicy(r).Validate(req, actor.Name, now)
	if errors.As(err, &fe) {
		return refuse(fe.Error())
	}
	if err != nil {
		return err
	}
	if u.resp.ar != nil {
		// The service applies approval (fleet-wide blocks need an L2+
		// approver), rate limits and enforcement, and notes the request on
		// the incident's timeline.
		return u.requestBlock(w, r, req, back, refuse)
	}
	d, err = u.resp.st.CreateDecision(ctx, actor, d)
	if err != nil {
		if msg, ok := actionError(err); ok {
			return refuse(msg)
		}
		return err
	}
	where := "on " + d.DescribeScope()
	msg := fmt.Sprintf("Decision %d: %s %s %s until %s.", d.ID, d.Type, d.Value, where, d.Until.Format("2006-01-02 15:04Z"))
	if req.IncidentID > 0 && u.soc.resp != nil {
		// The incident's timeline records the response next to the alerts
		// that caused it.
		if _, err := u.soc.resp.AddNote(ctx, actor, req.IncidentID, "Active response: "+msg+" Reason: "+d.Reason); err != nil {
			u.log.Warn("note decision on incident", "incident", req.IncidentID, "err", err)
		}
	}
	u.setFlash(w, false, msg)
	if back == "" {
		back = "/decisions"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
	return nil
}

// formLabels turns the form's labels field ("role=web, env=prod") into
// the request's selector.
func formLabels(field string) (json.RawMessage, error) {
	m := map[string]string{}
	for _, part := range strings.Split(field, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		k, v, err := agentproto.ParseLabel(part)
		if err != nil {
			return nil, fmt.Errorf("labels: %w", err)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("labels: %q is given twice", k)
		}
		m[k] = v
	}
	if len(m) == 0 {
		return nil, errors.New("labels: name at least one key=value")
	}
	return json.Marshal(m)
}

// formEndpoints turns the form's endpoints field into the request's: empty
// means the endpoint whose hostname is host when exactly one enrolled
// endpoint has it, else the whole fleet; "all" the whole fleet; otherwise
// ids or hostnames separated by commas or spaces.
func (u *UI) formEndpoints(ctx context.Context, field, host string) (json.RawMessage, error) {
	if strings.EqualFold(field, "all") {
		return json.RawMessage(`"all"`), nil
	}
	var eps []store.Endpoint
	if u.fleet.f != nil && (field != "" || host != "") {
		var err error
		if eps, err = u.fleet.f.Endpoints(ctx); err != nil {
			return nil, err
		}
	}
	if field == "" {
		var match []string
		for _, e := range eps {
			if host != "" && e.Status != store.EndpointRevoked && strings.EqualFold(e.Hostname, host) {
				match = append(match, e.ID)
			}
		}
		if len(match) != 1 {
			return json.RawMessage(`"all"`), nil
		}
		return json.Marshal(match)
	}
	var ids []string
	for _, name := range strings.FieldsFunc(field, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
		id := name
		var hits []string
		for _, e := range eps {
			if e.ID == name {
				hits = []string{e.ID}
				break
			}
			if e.Status != store.EndpointRevoked && strings.EqualFold(e.Hostname, name) {
				hits = append(hits, e.ID)
			}
		}
		switch len(hits) {
		case 0: // the store names an unknown id
		case 1:
			id = hits[0]
		default:
			return nil, &decision.FieldError{Field: "endpoints", Reason: fmt.Sprintf("hostname %q names %d endpoints; use their ids", name, len(hits))}
		}
		ids = append(ids, id)
	}
	return json.Marshal(ids)
}

func (u *UI) revokeDecision(w http.ResponseWriter, r *http.Request) error {
	if err := u.decisionsReady(); err != nil {
		return err
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return errorf(http.StatusNotFound, "No decision %q.", r.PathValue("id"))
	}
	d, err := u.resp.st.RevokeDecision(r.Context(), actorOf(r), id, u.resp.now().UTC())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errorf(http.StatusNotFound, "No decision %d.", id)
	case errors.Is(err, store.ErrConflict):
		u.setFlash(w, true, fmt.Sprintf("Decision %d was not revoked: %v", id, err))
	case err != nil:
		return err
	default:
		u.setFlash(w, false, fmt.Sprintf("Decision %d (%s %s) revoked; bouncers and agents drop it on their next pull.", d.ID, d.Type, d.Value))
	}
	backTo(w, r, "/decisions")
	return nil
}

// formAlert reads the alert a "block this IP" button names.
func (u *UI) formAlert(ctx context.Context, s string) (alert.Alert, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return alert.Alert{}, &decision.FieldError{Field: "alert", Reason: fmt.Sprintf("%q is not an alert id", s)}
	}
	if u.soc.st == nil {
		return alert.Alert{}, &decision.FieldError{Field: "alert", Reason: "the incident service is not connected"}
	}
	a, err := u.soc.st.GetAlert(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return a, &decision.FieldError{Field: "alert", Reason: fmt.Sprintf("no alert %d", id)}
	}
	return a, err
}

// maxResponseIPs bounds the "block" buttons on an incident page.
const maxResponseIPs = 5

// ResponseIPs are the addresses the incident page offers to block: the
// incident's source.ip label, its shown alerts' source.ip labels and its
// ip observables, each once, valid addresses only.
func (d IncidentData) ResponseIPs() []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || len(out) >= maxResponseIPs {
			return
		}
		if v := a.Unmap().String(); !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	add(d.Inc.Labels["source.ip"])
	for _, a := range d.Alerts {
		add(a.Labels["source.ip"])
	}
	for _, o := range d.Observables {
		if o.Type == "ip" {
			add(o.Value)
		}
	}
	return out
}
