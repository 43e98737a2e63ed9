package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/autoresponse"
	"github.com/nocsoc/nocsoc/internal/decision"
	"github.com/nocsoc/nocsoc/internal/store"
)

// Responder is the active-response service: requested actions, their
// approval and execution. *autoresponse.Service implements it.
type Responder interface {
	Request(ctx context.Context, who autoresponse.Requester, req autoresponse.Request) (store.ResponseAction, error)
	Approve(ctx context.Context, who autoresponse.Requester, id int64, note string) (store.ResponseAction, error)
	Deny(ctx context.Context, who autoresponse.Requester, id int64, note string) (store.ResponseAction, error)
	List(ctx context.Context, f store.ResponseFilter) ([]store.ResponseAction, error)
	CanApprove(u store.User) bool
	Policy() decision.Policy
}

// responseActionRoutes registers host actions (isolate, release) and the
// approvals page.
func (u *UI) responseActionRoutes(m *http.ServeMux) {
	m.Handle("POST /responses/{kind}", u.authed(auth.RoleOperator, u.requestHostAction))
	m.Handle("GET /approvals", u.authed(auth.RoleViewer, u.approvalsPage))
	// The service decides who may approve (admins and the configured L2+
	// operators); the route lets operators through to ask it.
	m.Handle("POST /approvals/{id}/{action}", u.authed(auth.RoleOperator, u.decideApproval))
}

func (u *UI) responderReady() error {
	if u.resp.ar == nil {
		return errorf(http.StatusServiceUnavailable, "Active response (approvals, host isolation) is not connected to this console.")
	}
	return nil
}

// requesterOf is who asks, approves or denies: the signed-in user.
func requesterOf(r *http.Request) autoresponse.Requester {
	var who autoresponse.Requester
	if s := sessionFrom(r); s != nil {
		who.User = s.user
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		who.Remote = host
	}
	return who
}

// responseOutcome says in one line what became of a requested action,
// and whether that is a refusal.
func responseOutcome(a store.ResponseAction) (string, bool) {
	what := actionText(a)
	switch a.Status {
	case autoresponse.StatusPending:
		return fmt.Sprintf("Request #%d (%s) waits for approval by an L2+ approver: see Approvals.", a.ID, what), false
	case autoresponse.StatusRefused, autoresponse.StatusFailed, autoresponse.StatusDenied:
		return fmt.Sprintf("Request #%d (%s) %s: %s", a.ID, what, a.Status, a.Result), true
	}
	msg := fmt.Sprintf("Request #%d (%s) %s.", a.ID, what, a.Status)
	if a.DecisionID > 0 {
		msg = fmt.Sprintf("Decision %d: request #%d (%s) %s.", a.DecisionID, a.ID, what, a.Status)
	}
	return msg, false
}

// actionText describes an action: kind, parameters and scope.
func actionText(a store.ResponseAction) string {
	var b strings.Builder
	b.WriteString(strings.ReplaceAll(a.Kind, "_", " "))
	keys := make([]string, 0, len(a.Params))
	for k := range a.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, a.Params[k])
	}
	switch {
	case a.Labels != nil:
		b.WriteString(" on " + decision.Decision{Labels: a.Labels}.DescribeScope())
	case a.Endpoints == nil:
		b.WriteString(" on all endpoints")
	default:
		b.WriteString(" on " + strings.Join(a.Endpoints, ", "))
	}
	return b.String()
}

// requestBlock sends a validated block to the active-response service
// and reports the outcome as a flash on back.
func (u *UI) requestBlock(w http.ResponseWriter, r *http.Request, req decision.Request, back string, refuse func(string) error) error {
	a, err := u.resp.ar.Request(r.Context(), requesterOf(r), autoresponse.Request{Kind: autoresponse.KindBlockIP, Value: req.Value,
		Duration: req.Duration, Endpoints: req.Endpoints, Labels: req.Labels, Reason: req.Reason, IncidentID: req.IncidentID})
	if err != nil {
		if msg, ok := actionError(err); ok {
			return refuse(msg)
		}
		return err
	}
	msg, bad := responseOutcome(a)
	if bad {
		return refuse(msg)
	}
	u.setFlash(w, false, msg)
	if back == "" {
		back = "/decisions"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
	return nil
}

// hostKinds are the host actions the console's buttons request.
var hostKinds = []string{autoresponse.KindIsolateHost, autoresponse.KindReleaseHost}

// requestHostAction isolates or releases one endpoint. The endpoint is
// the form's "endpoint" id, else the one enrolled endpoint whose hostname
// is the form's "host", or the host.name label of the alert or incident
// the button is on. The outcome (done, waiting for approval, refused)
// comes back as a flash on the page the button was on.
func (u *UI) requestHostAction(w http.ResponseWriter, r *http.Request) error {
	if err := u.responderReady(); err != nil {
		return err
	}
	ctx := r.Context()
	kind := r.PathValue("kind")
	if !slices.Contains(hostKinds, kind) {
		return errorf(http.StatusNotFound, "No host action %q (%s).", kind, strings.Join(hostKinds, ", "))
	}
	back := r.PostFormValue("back")
	if localPath(back) != back || back == "" {
		back = "/decisions"
	}
	refuse := func(msg string) error {
		u.setFlash(w, true, "Not done: "+msg)
		http.Redirect(w, r, back, http.StatusSeeOther)
		return nil
	}
	req := autoresponse.Request{Kind: kind, Reason: strings.TrimSpace(r.PostFormValue("reason"))}
	endpoint := strings.TrimSpace(r.PostFormValue("endpoint"))
	host := strings.TrimSpace(r.PostFormValue("host"))
	if s := r.PostFormValue("alert"); s != "" {
		a, err := u.formAlert(ctx, s)
		var fe *decision.FieldError
		if errors.As(err, &fe) {
			return refuse(fe.Error())
		}
		if err != nil {
			return err
		}
		if host == "" {
			host = a.Labels["host.name"]
		}
		if host == "" {
			host = a.Labels["host"]
		}
		if req.Reason == "" {
			req.Reason = fmt.Sprintf("alert #%d: %s", a.ID, a.Title)
		}
		req.IncidentID = a.IncidentID
	}
	if s := r.PostFormValue("incident"); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return refuse(fmt.Sprintf("incident: %q is not an incident id", s))
		}
		req.IncidentID = id
		if req.Reason == "" && u.soc.st != nil {
			if inc, err := u.soc.st.GetIncident(ctx, id); err == nil {
				req.Reason = fmt.Sprintf("incident #%d: %s", inc.ID, inc.Title)
			}
		}
	}
	if endpoint == "" {
		if host == "" {
			return refuse("endpoint: name the endpoint (the alert has no host.name label)")
		}
		if u.fleet.f == nil {
			return refuse("endpoint: the endpoint fleet is not connected")
		}
		eps, err := u.fleet.f.Endpoints(ctx)
		if err != nil {
			return err
		}
		var hits []string
		for _, e := range eps {
			if e.Status != store.EndpointRevoked && strings.EqualFold(e.Hostname, host) {
				hits = append(hits, e.ID)
			}
		}
		switch len(hits) {
		case 0:
			return refuse(fmt.Sprintf("endpoint: no enrolled endpoint is named %q", host))
		case 1:
			endpoint = hits[0]
		default:
			return refuse(fmt.Sprintf("endpoint: %d endpoints are named %q; act from the endpoint's page", len(hits), host))
		}
	}
	raw, err := json.Marshal([]string{endpoint})
	if err != nil {
		return err
	}
	req.Endpoints = raw
	a, err := u.resp.ar.Request(ctx, requesterOf(r), req)
	if err != nil {
		if msg, ok := actionError(err); ok {
			return refuse(msg)
		}
		return err
	}
	msg, bad := responseOutcome(a)
	if bad {
		return refuse(msg)
	}
	u.setFlash(w, false, msg)
	http.Redirect(w, r, back, http.StatusSeeOther)
	return nil
}

// ApprovalRow is a response action on the approvals page.
type ApprovalRow struct {
	store.ResponseAction
	What string
}

// ApprovalsData is the approvals page's data.
type ApprovalsData struct {
	Pending []ApprovalRow
	Recent  []ApprovalRow
	// CanApprove is set when the user may approve and deny.
	CanApprove bool
}

// recentResponses bounds the recent-actions table.
const recentResponses = 50

func (u *UI) approvalsPage(w http.ResponseWriter, r *http.Request) error {
	if err := u.responderReady(); err != nil {
		return err
	}
	ctx := r.Context()
	pending, err := u.resp.ar.List(ctx, store.ResponseFilter{Status: autoresponse.StatusPending, Limit: 500})
	if err != nil {
		return err
	}
	recent, err := u.resp.ar.List(ctx, store.ResponseFilter{Limit: recentResponses})
	if err != nil {
		return err
	}
	d := ApprovalsData{CanApprove: u.resp.ar.CanApprove(requesterOf(r).User)}
	for _, a := range pending {
		d.Pending = append(d.Pending, ApprovalRow{ResponseAction: a, What: actionText(a)})
	}
	for _, a := range recent {
		d.Recent = append(d.Recent, ApprovalRow{ResponseAction: a, What: actionText(a)})
	}
	p := Page{Title: "Approvals", Nav: "decisions", Data: d}
	u.takeFlash(w, r, &p)
	return u.render(w, r, http.StatusOK, "approvals", p)
}

// decideApproval approves (and so runs) or denies a pending action. The
// service refuses users who are not approvers (403) and, under the
// four-eyes policy, the requester.
func (u *UI) decideApproval(w http.ResponseWriter, r *http.Request) error {
	if err := u.responderReady(); err != nil {
		return err
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return errorf(http.StatusNotFound, "No response request %q.", r.PathValue("id"))
	}
	decide := u.resp.ar.Approve
	switch r.PathValue("action") {
	case "approve":
	case "deny":
		decide = u.resp.ar.Deny
	default:
		return errorf(http.StatusNotFound, "No approval action %q (approve or deny).", r.PathValue("action"))
	}
	note := strings.TrimSpace(r.PostFormValue("note"))
	if len(note) > 1024 {
		u.setFlash(w, true, "note: is longer than 1024 bytes")
		backTo(w, r, "/approvals")
		return nil
	}
	a, err := decide(r.Context(), requesterOf(r), id, note)
	switch {
	case errors.Is(err, autoresponse.ErrForbidden):
		return errorf(http.StatusForbidden, "%s", err.Error())
	case errors.Is(err, store.ErrNotFound):
		return errorf(http.StatusNotFound, "No response request %d.", id)
	case err != nil:
		msg, ok := actionError(err)
		if !ok {
			return err
		}
		u.setFlash(w, true, msg)
	default:
		msg, bad := responseOutcome(a)
		u.setFlash(w, bad, msg)
	}
	backTo(w, r, "/approvals")
	return nil
}

// maxResponseHosts bounds the "isolate" buttons on an incident page.
const maxResponseHosts = 3

// ResponseHosts are the hosts the incident page offers to isolate: the
// host.name labels of the incident and of its shown alerts, each once.
func (d IncidentData) ResponseHosts() []string {
	var out []string
	add := func(h string) {
		if h = strings.TrimSpace(h); h != "" && !slices.Contains(out, h) && len(out) < maxResponseHosts {
			out = append(out, h)
		}
	}
	add(d.Inc.Labels["host.name"])
	for _, a := range d.Alerts {
		add(a.Labels["host.name"])
	}
	return out
}
