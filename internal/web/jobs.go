package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/fleet"
	"github.com/nocsoc/nocsoc/internal/store"
)

// registerJobs adds the agent job protocol (by agent credential) and the
// API for jobs, endpoint settings, pending updates, patches and software.
func (s *server) registerJobs(mux *http.ServeMux, route func(pattern, role string, h handlerFunc)) {
	if s.fleet == nil {
		return
	}
	mux.HandleFunc("GET "+agentproto.PathJobs, s.agentJobs)
	mux.HandleFunc("POST "+agentproto.PathJobResult, s.agentJobResult)

	route("POST /api/v1/jobs", auth.RoleOperator, s.createJobs)
	route("GET /api/v1/jobs", auth.RoleViewer, s.listJobs)
	route("GET /api/v1/jobs/{id}", auth.RoleViewer, s.getJob)
	route("POST /api/v1/jobs/{id}/cancel", auth.RoleOperator, s.cancelJob)
	route("GET /api/v1/endpoints/{id}/settings", auth.RoleViewer, s.getEndpointSettings)
	route("PUT /api/v1/endpoints/{id}/settings", auth.RoleAdmin, s.putEndpointSettings)

	route("GET /api/v1/endpoints/{id}/updates", auth.RoleViewer, s.endpointUpdates)
	route("GET /api/v1/patches", auth.RoleViewer, s.listPatches)
	route("GET /api/v1/patches/compliance", auth.RoleViewer, s.patchCompliance)

	route("GET /api/v1/software", auth.RoleViewer, s.listSoftware)
	route("GET /api/v1/software/rules", auth.RoleViewer, s.listSoftwareRules)
	route("POST /api/v1/software/rules", auth.RoleAdmin, s.createSoftwareRule)
	route("GET /api/v1/software/rules/{id}", auth.RoleViewer, s.getSoftwareRule)
	route("PUT /api/v1/software/rules/{id}", auth.RoleAdmin, s.updateSoftwareRule)
	route("DELETE /api/v1/software/rules/{id}", auth.RoleAdmin, s.deleteSoftwareRule)
	route("GET /api/v1/software/violations", auth.RoleViewer, s.listSoftwareViolations)
}

// agentJobs is an agent's long poll for jobs.
func (s *server) agentJobs(w http.ResponseWriter, r *http.Request) {
	ep, err := s.fleet.Authenticate(r.Context(), strings.TrimSpace(bearer(r)))
	if err != nil {
		s.agentError(w, r, err)
		return
	}
	wait := agentproto.DefaultJobWait
	if v := r.URL.Query().Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			s.agentError(w, r, badRequest("wait", "wait: %q is not a duration like \"25s\"", v))
			return
		}
		wait = d
	}
	jobs, err := s.fleet.WaitJobs(r.Context(), ep, wait)
	if err != nil {
		s.agentError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, agentproto.JobsResponse{Jobs: nonNil(jobs)})
}

func (s *server) agentJobResult(w http.ResponseWriter, r *http.Request) {
	ep, err := s.fleet.Authenticate(r.Context(), strings.TrimSpace(bearer(r)))
	if err != nil {
		s.agentError(w, r, err)
		return
	}
	var res agentproto.JobResult
	// The output is bounded by the agent; room for JSON escaping.
	if err := readAgentJSON(w, r, 8*agentproto.MaxJobOutput+64<<10, &res); err != nil {
		s.agentError(w, r, err)
		return
	}
	dup, err := s.fleet.RecordJobResult(r.Context(), ep, res)
	if err != nil {
		s.agentError(w, r, err)
		return
	}
	st := agentproto.StatusApplied
	if dup {
		st = agentproto.StatusDuplicate
	}
	writeJSON(w, http.StatusOK, agentproto.JobResultResponse{Status: st})
}

type jobRequest struct {
	Endpoints []string          `json:"endpoints"`
	Action    string            `json:"action"`
	Args      map[string]string `json:"args"`
	Packages  []string          `json:"packages"`
	NotBefore time.Time         `json:"not_before"`
	NotAfter  time.Time         `json:"not_after"`
	Timeout   string            `json:"timeout"`
	Reason    string            `json:"reason"`
}

func (s *server) createJobs(w http.ResponseWriter, r *http.Request, p principal) error {
	var req jobRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	spec := fleet.JobSpec{Endpoints: req.Endpoints, Action: req.Action, Args: req.Args, Packages: req.Packages,
		NotBefore: req.NotBefore, NotAfter: req.NotAfter, Reason: req.Reason, Origin: "api"}
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		if err != nil {
			return badRequest("timeout", "timeout: %q is not a duration like \"30m\"", req.Timeout)
		}
		spec.Timeout = d
	}
	jobs, err := s.fleet.CreateJobs(r.Context(), p.actor(), spec)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"jobs": jobs})
	return nil
}

func (s *server) listJobs(w http.ResponseWriter, r *http.Request, p principal) error {
	q := r.URL.Query()
	f := store.JobFilter{Endpoint: q.Get("endpoint"), Status: q.Get("status"), Action: q.Get("action"),
		Origin: q.Get("origin"), OriginRef: q.Get("origin_ref")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return badRequest("limit", "limit: %q is not a positive integer", v)
		}
		f.Limit = n
	}
	jobs, err := s.fleet.Jobs(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": nonNil(jobs)})
	return nil
}

func (s *server) getJob(w http.ResponseWriter, r *http.Request, p principal) error {
	j, err := s.fleet.Job(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"job": j})
	return nil
}

func (s *server) cancelJob(w http.ResponseWriter, r *http.Request, p principal) error {
	j, err := s.fleet.CancelJob(r.Context(), p.actor(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"job": j})
	return nil
}

func (s *server) getEndpointSettings(w http.ResponseWriter, r *http.Request, p principal) error {
	st, err := s.fleet.EndpointSettings(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"settings": st})
	return nil
}

func (s *server) putEndpointSettings(w http.ResponseWriter, r *http.Request, p principal) error {
	var req struct {
		AllowShell *bool `json:"allow_shell"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.AllowShell == nil {
		return badRequest("allow_shell", "allow_shell: is required (true or false)")
	}
	st, err := s.fleet.SetEndpointSettings(r.Context(), p.actor(), store.EndpointSettings{EndpointID: r.PathValue("id"), AllowShell: *req.AllowShell})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"settings": st})
	return nil
}

func (s *server) endpointUpdates(w http.ResponseWriter, r *http.Request, p principal) error {
	id := r.PathValue("id")
	st, ups, err := s.fleet.EndpointUpdates(r.Context(), id)
	if err != nil {
		return err
	}
	sec := 0
	for _, u := range ups {
		if u.Security {
			sec++
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"endpoint": id, "state": st, "updates": nonNil(ups), "pending": len(ups), "security": sec})
	return nil
}

func (s *server) listPatches(w http.ResponseWriter, r *http.Request, p principal) error {
	ps, err := s.fleet.Patches(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"patches": nonNil(ps)})
	return nil
}

func (s *server) patchCompliance(w http.ResponseWriter, r *http.Request, p principal) error {
	days := 30
	if v := r.URL.Query().Get("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return badRequest("days", "days: %q is not a whole number of days", v)
		}
		days = n
	}
	c, err := s.fleet.PatchCompliance(r.Context(), days)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *server) listSoftware(w http.ResponseWriter, r *http.Request, p principal) error {
	sw, err := s.fleet.Software(r.Context(), r.URL.Query().Get("q"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"software": nonNil(sw)})
	return nil
}

func (s *server) listSoftwareRules(w http.ResponseWriter, r *http.Request, p principal) error {
	rules, err := s.fleet.SoftwareRules(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"rules": nonNil(rules)})
	return nil
}

type softwareRuleRequest struct {
	List    string `json:"list"`
	Pattern string `json:"pattern"`
	Reason  string `json:"reason"`
}

func (s *server) createSoftwareRule(w http.ResponseWriter, r *http.Request, p principal) error {
	var req softwareRuleRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	rule, err := s.fleet.CreateSoftwareRule(r.Context(), p.actor(), store.SoftwareRule{List: req.List, Pattern: req.Pattern, Reason: req.Reason})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"rule": rule})
	return nil
}

func ruleID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, &HTTPError{Status: http.StatusNotFound, Msg: "software rule " + strconv.Quote(r.PathValue("id")) + " not found"}
	}
	return id, nil
}

func (s *server) getSoftwareRule(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := ruleID(r)
	if err != nil {
		return err
	}
	rule, err := s.fleet.SoftwareRule(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"rule": rule})
	return nil
}

func (s *server) updateSoftwareRule(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := ruleID(r)
	if err != nil {
		return err
	}
	var req softwareRuleRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	rule, err := s.fleet.UpdateSoftwareRule(r.Context(), p.actor(), store.SoftwareRule{ID: id, List: req.List, Pattern: req.Pattern, Reason: req.Reason})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"rule": rule})
	return nil
}

func (s *server) deleteSoftwareRule(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := ruleID(r)
	if err != nil {
		return err
	}
	if err := s.fleet.DeleteSoftwareRule(r.Context(), p.actor(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) listSoftwareViolations(w http.ResponseWriter, r *http.Request, p principal) error {
	vs, err := s.fleet.SoftwareViolations(r.Context(), r.URL.Query().Get("endpoint"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"violations": nonNil(vs)})
	return nil
}
