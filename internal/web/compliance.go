package web

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/compliance"
	"github.com/nocsoc/nocsoc/internal/fleet"
)

// registerCompliance adds the compliance API (policies, checks, results,
// scores, reports, exceptions, on-demand evaluation) and the agents' fact
// spec.
func (s *server) registerCompliance(mux *http.ServeMux, route func(pattern, role string, h handlerFunc)) {
	if s.fleet == nil {
		return
	}
	mux.HandleFunc("GET "+agentproto.PathFactSpec, s.agentFactSpec)
	route("GET /api/v1/compliance/policies", auth.RoleViewer, s.listCompliancePolicies)
	route("GET /api/v1/compliance/policies/{id}", auth.RoleViewer, s.getCompliancePolicy)
	route("POST /api/v1/compliance/policies", auth.RoleAdmin, s.uploadCompliancePolicy)
	route("DELETE /api/v1/compliance/policies/{id}", auth.RoleAdmin, s.deleteCompliancePolicy)
	route("GET /api/v1/compliance/checks", auth.RoleViewer, s.listComplianceChecks)
	route("GET /api/v1/compliance/checks/{id}", auth.RoleViewer, s.getComplianceCheck)
	route("GET /api/v1/compliance/results", auth.RoleViewer, s.complianceResults)
	route("GET /api/v1/compliance/scores", auth.RoleViewer, s.complianceScores)
	route("GET /api/v1/compliance/report", auth.RoleViewer, s.complianceReport)
	route("POST /api/v1/compliance/evaluate", auth.RoleOperator, s.complianceEvaluate)
	route("GET /api/v1/compliance/exceptions", auth.RoleViewer, s.listComplianceExceptions)
	route("POST /api/v1/compliance/exceptions", auth.RoleOperator, s.createComplianceException)
	route("GET /api/v1/compliance/exceptions/{id}", auth.RoleViewer, s.getComplianceException)
	route("PUT /api/v1/compliance/exceptions/{id}", auth.RoleOperator, s.updateComplianceException)
	route("DELETE /api/v1/compliance/exceptions/{id}", auth.RoleOperator, s.revokeComplianceException)
}

func (s *server) agentFactSpec(w http.ResponseWriter, r *http.Request) {
	if _, err := s.fleet.Authenticate(r.Context(), strings.TrimSpace(bearer(r))); err != nil {
		s.agentError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.fleet.FactSpec(r.Context()))
}

type policySummary struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Source      string `json:"source"`
	File        string `json:"file"`
	Checks      int    `json:"checks"`
}

func summarize(p *compliance.Policy) policySummary {
	return policySummary{ID: p.ID, Name: p.Name, Description: p.Description, Source: p.Source, File: p.File, Checks: len(p.Checks)}
}

func (s *server) listCompliancePolicies(w http.ResponseWriter, r *http.Request, _ principal) error {
	set, errs := s.fleet.PolicySet(r.Context())
	out := make([]policySummary, 0, len(set.Policies))
	for _, p := range set.Policies {
		out = append(out, summarize(p))
	}
	writeJSON(w, http.StatusOK, map[string]any{"policies": out, "errors": nonNil(errs)})
	return nil
}

func (s *server) getCompliancePolicy(w http.ResponseWriter, r *http.Request, _ principal) error {
	set, _ := s.fleet.PolicySet(r.Context())
	p, ok := set.Policy(r.PathValue("id"))
	if !ok {
		return &HTTPError{Status: http.StatusNotFound, Msg: fmt.Sprintf("policy %q not found", r.PathValue("id"))}
	}
	writeJSON(w, http.StatusOK, map[string]any{"policy": summarize(p), "checks": p.Checks, "yaml": p.Raw})
	return nil
}

// uploadCompliancePolicy takes the policy YAML as the request body
// (Content-Type application/yaml or text/yaml).
func (s *server) uploadCompliancePolicy(w http.ResponseWriter, r *http.Request, p principal) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, compliance.MaxPolicyBytes))
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("", "request body must be the policy YAML")
	}
	pol, created, err := s.fleet.UploadPolicy(r.Context(), p.actor(), body)
	var pe *fleet.PolicyError
	switch {
	case errors.As(err, &pe):
		msgs := make([]string, len(pe.Errs))
		for i, e := range pe.Errs {
			msgs[i] = e.Error()
		}
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "policy refused: " + msgs[0], "errors": msgs})
		return nil
	case errors.Is(err, fleet.ErrPolicyReadOnly):
		return &HTTPError{Status: http.StatusConflict, Msg: err.Error()}
	case err != nil:
		return err
	}
	st := http.StatusOK
	if created {
		st = http.StatusCreated
	}
	writeJSON(w, st, map[string]any{"policy": summarize(pol),
		"note": "results appear at each endpoint's next facts report, or at once with POST /api/v1/compliance/evaluate"})
	return nil
}

func (s *server) deleteCompliancePolicy(w http.ResponseWriter, r *http.Request, p principal) error {
	err := s.fleet.DeletePolicy(r.Context(), p.actor(), r.PathValue("id"))
	if errors.Is(err, fleet.ErrPolicyReadOnly) {
		return &HTTPError{Status: http.StatusConflict, Msg: err.Error()}
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) listComplianceChecks(w http.ResponseWriter, r *http.Request, _ principal) error {
	q := r.URL.Query()
	fw, pol := q.Get("framework"), q.Get("policy")
	if fw != "" {
		if err := compliance.ValidateFramework(fw); err != nil {
			return badRequest("framework", "framework: %v", err)
		}
	}
	set, _ := s.fleet.PolicySet(r.Context())
	out := []*compliance.Check{}
	for _, c := range set.Checks() {
		if (fw == "" || len(c.Controls[fw]) > 0) && (pol == "" || c.Policy == pol) {
			out = append(out, c)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"checks": out})
	return nil
}

func (s *server) getComplianceCheck(w http.ResponseWriter, r *http.Request, _ principal) error {
	set, _ := s.fleet.PolicySet(r.Context())
	c, ok := set.Check(r.PathValue("id"))
	if !ok {
		return &HTTPError{Status: http.StatusNotFound, Msg: fmt.Sprintf("check %q not found", r.PathValue("id"))}
	}
	all, err := s.fleet.Results(r.Context(), "", "")
	if err != nil {
		return err
	}
	var rs []fleet.ResultView
	for _, v := range all {
		if v.Check == c.ID {
			rs = append(rs, v)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"check": c, "results": nonNil(rs)})
	return nil
}

func (s *server) complianceResults(w http.ResponseWriter, r *http.Request, _ principal) error {
	q := r.URL.Query()
	ep := q.Get("endpoint")
	if ep != "" {
		if _, err := s.fleet.Endpoint(r.Context(), ep); err != nil {
			return err
		}
	}
	rs, err := s.fleet.Results(r.Context(), ep, q.Get("framework"))
	if err != nil {
		return err
	}
	if st := q.Get("status"); st != "" {
		var keep []fleet.ResultView
		for _, v := range rs {
			if v.Status == st {
				keep = append(keep, v)
			}
		}
		rs = keep
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": nonNil(rs)})
	return nil
}

func (s *server) complianceScores(w http.ResponseWriter, r *http.Request, _ principal) error {
	q := r.URL.Query()
	days := 30
	if v := q.Get("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 366 {
			return badRequest("days", "days: %q must be 1-366", v)
		}
		days = n
	}
	sc, err := s.fleet.Scores(r.Context(), q.Get("endpoint"), days)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sc)
	return nil
}

// parseReportTime accepts RFC 3339 or a date (midnight UTC).
func parseReportTime(name, v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, badRequest(name, "%s: %q is not an RFC 3339 time or a YYYY-MM-DD date", name, v)
}

func (s *server) complianceReport(w http.ResponseWriter, r *http.Request, p principal) error {
	q := r.URL.Query()
	fw := q.Get("framework")
	if fw == "" {
		return badRequest("framework", "framework: is required (one of %s)", strings.Join(compliance.Frameworks(), ", "))
	}
	to := s.now().UTC()
	var err error
	if v := q.Get("to"); v != "" {
		if to, err = parseReportTime("to", v); err != nil {
			return err
		}
	}
	from := to.AddDate(0, 0, -30)
	if v := q.Get("from"); v != "" {
		if from, err = parseReportTime("from", v); err != nil {
			return err
		}
	}
	format := q.Get("format")
	if format == "" {
		format = "json"
	}
	if format != "json" && format != "csv" && format != "html" {
		return badRequest("format", "format: %q must be html, csv or json", format)
	}
	rep, err := s.fleet.Report(r.Context(), fw, from, to)
	if err != nil {
		return err
	}
	// A report is an export of evidence: it is audited like other exports.
	if err := s.st.AppendAudit(r.Context(), p.actor(), "compliance.report.export", "compliance_report:"+fw,
		nil, map[string]any{"framework": fw, "from": from, "to": to, "format": format}); err != nil {
		return err
	}
	name := fmt.Sprintf("compliance-%s-%s-%s.%s", fw, from.Format("20060102"), to.Format("20060102"), format)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	switch format {
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		return rep.WriteCSV(w)
	case "html":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		return rep.WriteHTML(w)
	}
	w.Header().Set("Content-Type", "application/json")
	return rep.WriteJSON(w)
}

func (s *server) complianceEvaluate(w http.ResponseWriter, r *http.Request, _ principal) error {
	n, err := s.fleet.Evaluate(r.Context(), r.URL.Query().Get("endpoint"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"evaluated_endpoints": n})
	return nil
}

func (s *server) listComplianceExceptions(w http.ResponseWriter, r *http.Request, _ principal) error {
	es, err := s.fleet.Exceptions(r.Context(), r.URL.Query().Get("all") == "true")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"exceptions": nonNil(es)})
	return nil
}

func exceptionID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, &HTTPError{Status: http.StatusNotFound, Msg: fmt.Sprintf("exception %q not found", r.PathValue("id"))}
	}
	return id, nil
}

func (s *server) getComplianceException(w http.ResponseWriter, r *http.Request, _ principal) error {
	id, err := exceptionID(r)
	if err != nil {
		return err
	}
	es, err := s.fleet.Exceptions(r.Context(), true)
	if err != nil {
		return err
	}
	for _, e := range es {
		if e.ID == id {
			writeJSON(w, http.StatusOK, map[string]any{"exception": e})
			return nil
		}
	}
	return &HTTPError{Status: http.StatusNotFound, Msg: fmt.Sprintf("exception %d not found", id)}
}

func (s *server) createComplianceException(w http.ResponseWriter, r *http.Request, p principal) error {
	var in fleet.ExceptionInput
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	e, err := s.fleet.CreateException(r.Context(), p.actor(), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"exception": e})
	return nil
}

func (s *server) updateComplianceException(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := exceptionID(r)
	if err != nil {
		return err
	}
	var in struct {
		Owner   string    `json:"owner"`
		Reason  string    `json:"reason"`
		Expires time.Time `json:"expires"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	e, err := s.fleet.UpdateException(r.Context(), p.actor(), id, fleet.ExceptionInput{Owner: in.Owner, Reason: in.Reason, Expires: in.Expires})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"exception": e})
	return nil
}

func (s *server) revokeComplianceException(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := exceptionID(r)
	if err != nil {
		return err
	}
	e, err := s.fleet.RevokeException(r.Context(), p.actor(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"exception": e})
	return nil
}
