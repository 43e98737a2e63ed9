package web

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/autoresponse"
	"github.com/nocsoc/nocsoc/internal/store"
)

// registerResponse adds the active-response API: requesting an action
// (block an address, isolate a host, lock a user, kill a process),
// listing them, approving or denying pending ones, and the enforcement
// jobs of a decision. Approval is checked by the service: admins, and
// operators listed in response.approval.approvers (tier L2+).
func (s *server) registerResponse(mux *http.ServeMux, route func(pattern, role string, h handlerFunc)) {
	if s.autoresp == nil {
		return
	}
	route("GET /api/v1/responses", auth.RoleViewer, s.listResponses)
	route("POST /api/v1/responses", auth.RoleOperator, s.requestResponse)
	route("GET /api/v1/responses/{id}", auth.RoleViewer, s.getResponse)
	route("POST /api/v1/responses/{id}/approve", auth.RoleOperator, s.decideResponse(true))
	route("POST /api/v1/responses/{id}/deny", auth.RoleOperator, s.decideResponse(false))
	route("GET /api/v1/decisions/{id}/enforcement", auth.RoleViewer, s.decisionEnforcement)
}

func (s *server) requester(p principal) autoresponse.Requester {
	return autoresponse.Requester{User: p.User, Remote: p.Remote}
}

// responseErr maps the service's refusals to statuses.
func responseErr(err error) error {
	if errors.Is(err, autoresponse.ErrForbidden) {
		return &HTTPError{Status: http.StatusForbidden, Msg: err.Error()}
	}
	return err
}

func (s *server) requestResponse(w http.ResponseWriter, r *http.Request, p principal) error {
	var req autoresponse.Request
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	a, err := s.autoresp.Request(r.Context(), s.requester(p), req)
	if err != nil {
		return responseErr(err)
	}
	status := http.StatusCreated
	if a.Status == autoresponse.StatusPending {
		status = http.StatusAccepted
	}
	if a.Labels == nil {
		writeJSON(w, status, a)
		return nil
	}
	// A label selector: say how many endpoints it matches now.
	n, err := s.autoresp.ResolveCount(r.Context(), nil, a.Labels)
	if err != nil {
		return err
	}
	writeJSON(w, status, struct {
		store.ResponseAction
		ResolvedEndpoints int `json:"resolved_endpoints"`
	}{a, n})
	return nil
}

func (s *server) listResponses(w http.ResponseWriter, r *http.Request, p principal) error {
	q := r.URL.Query()
	f := store.ResponseFilter{Status: q.Get("status")}
	for _, x := range []struct {
		name string
		dst  *int64
	}{{"incident_id", &f.IncidentID}, {"before", &f.BeforeID}} {
		if v := q.Get(x.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 {
				return badRequest(x.name, "%s must be a positive integer, not %q", x.name, v)
			}
			*x.dst = n
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return badRequest("limit", "limit must be a positive integer, not %q", v)
		}
		f.Limit = n
	}
	switch f.Status {
	case "", autoresponse.StatusPending, autoresponse.StatusApproved, autoresponse.StatusDenied, autoresponse.StatusRunning,
		autoresponse.StatusSucceeded, autoresponse.StatusFailed, autoresponse.StatusRefused:
	default:
		return badRequest("status", "status %q is not pending, approved, denied, running, succeeded, failed or refused", f.Status)
	}
	as, err := s.autoresp.List(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"responses": as, "stats": s.autoresp.Stats()})
	return nil
}

func (s *server) getResponse(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := decisionPathID(r)
	if err != nil {
		return err
	}
	a, jobs, err := s.autoresp.Get(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"response": a, "jobs": jobs})
	return nil
}

func (s *server) decideResponse(approve bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p principal) error {
		id, err := decisionPathID(r)
		if err != nil {
			return err
		}
		var req struct {
			Note string `json:"note"`
		}
		if r.ContentLength != 0 {
			if err := decodeJSON(w, r, &req); err != nil {
				return err
			}
		}
		if len(req.Note) > 1024 {
			return badRequest("note", "note is longer than 1024 bytes")
		}
		decide := s.autoresp.Deny
		if approve {
			decide = s.autoresp.Approve
		}
		a, err := decide(r.Context(), s.requester(p), id, req.Note)
		if err != nil {
			return responseErr(err)
		}
		writeJSON(w, http.StatusOK, a)
		return nil
	}
}

func (s *server) decisionEnforcement(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := decisionPathID(r)
	if err != nil {
		return err
	}
	jobs, err := s.autoresp.DecisionJobs(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"decision_id": id, "jobs": jobs})
	return nil
}
