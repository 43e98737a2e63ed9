package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/eventstore"
	"github.com/nocsoc/nocsoc/internal/fleet"
)

// registerAgents adds the agent wire protocol (authenticated by the
// agent's own credential) and the endpoint API (by user token).
func (s *server) registerAgents(mux *http.ServeMux, route func(pattern, role string, h handlerFunc)) {
	if s.fleet == nil {
		return
	}
	mux.HandleFunc("POST "+agentproto.PathEnroll, s.agentEnroll)
	mux.HandleFunc("POST "+agentproto.PathHeartbeat, s.agentHeartbeat)
	mux.HandleFunc("POST "+agentproto.PathBatches, s.agentBatch)
	route("POST /api/v1/enrollment-tokens", auth.RoleAdmin, s.createEnrollmentToken)
	route("GET /api/v1/endpoints", auth.RoleViewer, s.listEndpoints)
	route("GET /api/v1/endpoints/{id}", auth.RoleViewer, s.getEndpoint)
	route("GET /api/v1/endpoints/{id}/packages", auth.RoleViewer, s.endpointPackages)
	route("GET /api/v1/endpoints/{id}/metrics", auth.RoleViewer, s.endpointMetrics)
	route("DELETE /api/v1/endpoints/{id}", auth.RoleAdmin, s.revokeEndpoint)
}

// agentError writes the protocol's error body; fleet errors map to 401 and
// 403, validation to 400, oversize to 413.
func (s *server) agentError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, fleet.ErrUnauthorized):
		w.Header().Set("WWW-Authenticate", `Bearer realm="nocsoc-agent"`)
		writeJSON(w, http.StatusUnauthorized, errorBody{Error: err.Error()})
	case errors.Is(err, fleet.ErrForbidden):
		writeJSON(w, http.StatusForbidden, errorBody{Error: err.Error()})
	default:
		s.writeError(w, r, err)
	}
}

// readAgentJSON decodes a strict JSON body of at most limit bytes.
func readAgentJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("", "invalid JSON body: %v", err)
	}
	if dec.More() {
		return badRequest("", "invalid JSON body: data after the object")
	}
	return nil
}

func (s *server) agentEnroll(w http.ResponseWriter, r *http.Request) {
	var req agentproto.EnrollRequest
	if err := readAgentJSON(w, r, 64<<10, &req); err != nil {
		s.agentError(w, r, err)
		return
	}
	resp, err := s.fleet.Enroll(r.Context(), req, remoteIP(r))
	if err != nil {
		s.agentError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, resp)
}

func (s *server) agentHeartbeat(w http.ResponseWriter, r *http.Request) {
	ep, err := s.fleet.Authenticate(r.Context(), strings.TrimSpace(bearer(r)))
	if err != nil {
		s.agentError(w, r, err)
		return
	}
	var hb agentproto.Heartbeat
	if err := readAgentJSON(w, r, 64<<10, &hb); err != nil {
		s.agentError(w, r, err)
		return
	}
	if err := s.fleet.Heartbeat(r.Context(), ep, hb, remoteIP(r)); err != nil {
		s.agentError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *server) agentBatch(w http.ResponseWriter, r *http.Request) {
	ep, err := s.fleet.Authenticate(r.Context(), strings.TrimSpace(bearer(r)))
	if err != nil {
		s.agentError(w, r, err)
		return
	}
	var b agentproto.Batch
	if err := readAgentJSON(w, r, agentproto.MaxBatchBytes, &b); err != nil {
		s.agentError(w, r, err)
		return
	}
	dup, err := s.fleet.ApplyBatch(r.Context(), ep, b)
	if err != nil {
		s.agentError(w, r, err)
		return
	}
	st := agentproto.StatusApplied
	if dup {
		st = agentproto.StatusDuplicate
	}
	writeJSON(w, http.StatusOK, agentproto.BatchResponse{Status: st})
}

func (s *server) createEnrollmentToken(w http.ResponseWriter, r *http.Request, p principal) error {
	var req struct {
		TTL string `json:"ttl"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
	}
	var ttl time.Duration
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil {
			return badRequest("ttl", "ttl: %q is not a duration like \"24h\"", req.TTL)
		}
		ttl = d
	}
	plain, t, err := s.fleet.CreateEnrollmentToken(r.Context(), p.actor(), ttl)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": plain, "id": t.ID, "prefix": t.Prefix, "expires_at": t.ExpiresAt,
		"note": "the token is shown only this once; it enrolls one agent"})
	return nil
}

func (s *server) listEndpoints(w http.ResponseWriter, r *http.Request, p principal) error {
	eps, err := s.fleet.Endpoints(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"endpoints": nonNil(eps)})
	return nil
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

func (s *server) getEndpoint(w http.ResponseWriter, r *http.Request, p principal) error {
	e, err := s.fleet.Endpoint(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	inv, err := s.fleet.Inventory(r.Context(), e.ID)
	if err != nil {
		return err
	}
	out := map[string]any{"endpoint": e}
	if inv != nil {
		// Packages have their own endpoint; the rest of the inventory is
		// small enough to show here.
		summary := *inv
		summary.Packages = nil
		out["inventory"] = summary
		out["packages"] = len(inv.Packages)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) endpointPackages(w http.ResponseWriter, r *http.Request, p principal) error {
	id := r.PathValue("id")
	if _, err := s.fleet.Endpoint(r.Context(), id); err != nil {
		return err
	}
	inv, err := s.fleet.Inventory(r.Context(), id)
	if err != nil {
		return err
	}
	var pkgs []agentproto.Package
	if inv != nil {
		pkgs = inv.Packages
	}
	writeJSON(w, http.StatusOK, map[string]any{"endpoint": id, "packages": nonNil(pkgs)})
	return nil
}

func (s *server) endpointMetrics(w http.ResponseWriter, r *http.Request, p principal) error {
	q := r.URL.Query()
	f := eventstore.MetricFilter{Endpoint: r.PathValue("id"), Name: q.Get("name")}
	for _, tp := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q.Get(tp.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return badRequest(tp.name, "%s: %q is not an RFC 3339 time", tp.name, v)
			}
			*tp.dst = t
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.To.Before(f.From) {
		return badRequest("to", "to is before from")
	}
	if v := q.Get("limit"); v != "" {
		var n int
		if _, err := fmt.Sscanf(v, "%d", &n); err != nil || n <= 0 {
			return badRequest("limit", "limit: %q is not a positive integer", v)
		}
		f.Limit = n
	}
	ms, err := s.fleet.Metrics(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"endpoint": f.Endpoint, "samples": nonNil(ms)})
	return nil
}

func (s *server) revokeEndpoint(w http.ResponseWriter, r *http.Request, p principal) error {
	e, err := s.fleet.Revoke(r.Context(), p.actor(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"endpoint": e})
	return nil
}
