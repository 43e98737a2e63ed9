package web

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/incident"
	"github.com/nocsoc/nocsoc/internal/runbook"
	"github.com/nocsoc/nocsoc/internal/store"
)

// detailAlerts and detailTimeline bound what GET /incidents/{id} loads, so
// an incident with tens of thousands of alerts still opens quickly; the
// rest is paged through …/alerts and …/timeline.
const (
	detailAlerts   = 50
	detailTimeline = 200
)

func validTeam(field, v string) error {
	if v != "" && v != alert.TeamNOC && v != alert.TeamSOC {
		return badRequest(field, "%s must be noc or soc, got %q", field, v)
	}
	return nil
}

func validSeverity(v string) error {
	if v != "" && !slices.Contains(check.Severities, v) {
		return badRequest("severity", "unknown severity %q (one of %s)", v, strings.Join(check.Severities, ", "))
	}
	return nil
}

// beforeParam reads the ?before= id cursor.
func beforeParam(r *http.Request, name, what string) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, badRequest(name, "%s must be %s id (a positive integer), got %q", name, what, v)
	}
	return n, nil
}

func (s *server) listIncidents(w http.ResponseWriter, r *http.Request, p principal) error {
	q := r.URL.Query()
	var f store.IncidentFilter
	if v := q.Get("status"); v != "" {
		for _, st := range strings.Split(v, ",") {
			st = strings.TrimSpace(st)
			switch {
			case st == "open" || st == "finished":
				open := st == "open"
				f.Open = &open
			case slices.Contains(incident.Statuses, st):
				f.Statuses = append(f.Statuses, st)
			default:
				return badRequest("status", "unknown status %q (one of %s, or open, finished; comma-separated)", st, strings.Join(incident.Statuses, ", "))
			}
		}
	}
	f.Team, f.Severity = q.Get("team"), q.Get("severity")
	if err := validTeam("team", f.Team); err != nil {
		return err
	}
	if err := validSeverity(f.Severity); err != nil {
		return err
	}
	limit, err := intParam(r, "limit", 100, 1000)
	if err != nil {
		return err
	}
	f.Limit = limit
	if f.BeforeID, err = beforeParam(r, "before", "an incident"); err != nil {
		return err
	}
	incs, err := s.st.ListIncidents(r.Context(), f)
	if err != nil {
		return err
	}
	if incs == nil {
		incs = []incident.Incident{}
	}
	resp := map[string]any{"incidents": incs}
	if len(incs) == limit {
		resp["next_before"] = incs[len(incs)-1].ID
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

type runbookRef struct {
	ID    int64         `json:"id"`
	Name  string        `json:"name"`
	Title string        `json:"title"`
	HTML  template.HTML `json:"html"`
}

type escalationJSON struct {
	Policy           string     `json:"policy,omitempty"`
	Tier             int        `json:"tier"`
	TierName         string     `json:"tier_name,omitempty"`
	Round            int        `json:"round"`
	NextEscalationAt *time.Time `json:"next_escalation_at,omitempty"`
	Escalations      int        `json:"escalations"`
}

type incidentDetail struct {
	Incident          incident.Incident        `json:"incident"`
	Alerts            []alert.Alert            `json:"alerts"`
	AlertsTotal       int                      `json:"alerts_total"`
	NextBefore        int64                    `json:"next_before,omitempty"`
	Timeline          []incident.TimelineEntry `json:"timeline"`
	TimelineNextAfter int64                    `json:"timeline_next_after,omitempty"`
	Tasks             []incident.Task          `json:"tasks"`
	Observables       []incident.Observable    `json:"observables"`
	Postmortem        *incident.Postmortem     `json:"postmortem,omitempty"`
	Runbook           *runbookRef              `json:"runbook,omitempty"`
	Escalation        escalationJSON           `json:"escalation"`
}

func (s *server) getIncident(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	inc, err := s.resp.Get(ctx, id)
	if err != nil {
		return err
	}
	d := incidentDetail{Incident: inc}
	if d.Alerts, d.AlertsTotal, err = s.st.IncidentAlerts(ctx, id, detailAlerts, 0); err != nil {
		return err
	}
	if len(d.Alerts) == detailAlerts {
		d.NextBefore = d.Alerts[len(d.Alerts)-1].ID
	}
	if d.Timeline, err = s.st.Timeline(ctx, id, detailTimeline, 0); err != nil {
		return err
	}
	if len(d.Timeline) == detailTimeline {
		d.TimelineNextAfter = d.Timeline[len(d.Timeline)-1].ID
	}
	if d.Tasks, err = s.st.Tasks(ctx, id); err != nil {
		return err
	}
	if d.Observables, err = s.st.Observables(ctx, id); err != nil {
		return err
	}
	if pm, err := s.st.Postmortem(ctx, id); err == nil {
		d.Postmortem = &pm
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if inc.RunbookID != 0 {
		rb, err := s.st.GetRunbook(ctx, inc.RunbookID)
		switch {
		case err == nil:
			html, err := runbook.Render(rb.Markdown)
			if err != nil {
				return err
			}
			d.Runbook = &runbookRef{ID: rb.ID, Name: rb.Name, Title: rb.Title, HTML: html}
		case !errors.Is(err, store.ErrNotFound): // a deleted runbook is simply not shown
			return err
		}
	}
	d.Escalation = escalationJSON{Policy: inc.Policy, Tier: inc.Tier, Round: inc.EscalationRound, NextEscalationAt: inc.NextEscalationAt, Escalations: inc.Escalations}
	if inc.Policy != "" && inc.Tier >= 0 {
		pols, err := s.resp.Policies(ctx)
		if err != nil {
			return err
		}
		for _, pol := range pols {
			if pol.Name == inc.Policy && inc.Tier < len(pol.Tiers) {
				d.Escalation.TierName = pol.Tiers[inc.Tier].Name
			}
		}
	}
	if d.Alerts == nil {
		d.Alerts = []alert.Alert{}
	}
	if d.Timeline == nil {
		d.Timeline = []incident.TimelineEntry{}
	}
	if d.Tasks == nil {
		d.Tasks = []incident.Task{}
	}
	if d.Observables == nil {
		d.Observables = []incident.Observable{}
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (s *server) incidentAlerts(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit", detailAlerts, 1000)
	if err != nil {
		return err
	}
	before, err := beforeParam(r, "before", "an alert")
	if err != nil {
		return err
	}
	as, total, err := s.st.IncidentAlerts(r.Context(), id, limit, before)
	if err != nil {
		return err
	}
	if as == nil {
		as = []alert.Alert{}
	}
	resp := map[string]any{"incident_id": id, "alerts": as, "alerts_total": total}
	if len(as) == limit {
		resp["next_before"] = as[len(as)-1].ID
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *server) incidentTimeline(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit", detailTimeline, 1000)
	if err != nil {
		return err
	}
	after, err := beforeParam(r, "after", "a timeline entry")
	if err != nil {
		return err
	}
	before, err := beforeParam(r, "before", "a timeline entry")
	if err != nil {
		return err
	}
	order := r.URL.Query().Get("order")
	switch {
	case order != "" && order != "asc" && order != "desc":
		return badRequest("order", "%q is not asc or desc", order)
	case order == "desc" && after != 0:
		return badRequest("after", "pages newest first with before, not after")
	case order != "desc" && before != 0:
		return badRequest("before", "pages oldest first with after; before needs order=desc")
	}
	if _, err := s.st.GetIncident(r.Context(), id); err != nil {
		return err
	}
	var es []incident.TimelineEntry
	if order == "desc" {
		es, err = s.st.TimelineBefore(r.Context(), id, limit, before)
	} else {
		es, err = s.st.Timeline(r.Context(), id, limit, after)
	}
	if err != nil {
		return err
	}
	if es == nil {
		es = []incident.TimelineEntry{}
	}
	resp := map[string]any{"incident_id": id, "timeline": es}
	if len(es) == limit {
		if order == "desc" {
			resp["next_before"] = es[len(es)-1].ID
		} else {
			resp["next_after"] = es[len(es)-1].ID
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// decodeOptional decodes a JSON body that may be absent.
func decodeOptional(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return decodeJSON(w, r, v)
}

type noteBody struct {
	Note string `json:"note"`
}

// statusAction is acknowledge, resolve, close and reopen: a fixed target
// status with an optional note.
func (s *server) statusAction(to string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p principal) error {
		id, err := idParam(r)
		if err != nil {
			return err
		}
		var req noteBody
		if err := decodeOptional(w, r, &req); err != nil {
			return err
		}
		inc, err := s.resp.SetStatus(r.Context(), p.actor(), id, to, req.Note)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, inc)
		return nil
	}
}

func (s *server) setIncidentStatus(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	var req struct {
		Status string `json:"status"`
		Note   string `json:"note"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	switch req.Status {
	case incident.StatusInvestigating, incident.StatusMitigated, incident.StatusAcknowledged:
	case "":
		return badRequest("status", "status is required (investigating or mitigated)")
	default:
		return badRequest("status", "status must be investigating, mitigated or acknowledged, got %q (use …/resolve, …/close and …/reopen for the others)", req.Status)
	}
	inc, err := s.resp.SetStatus(r.Context(), p.actor(), id, req.Status, req.Note)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, inc)
	return nil
}

func (s *server) escalateIncident(down bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p principal) error {
		id, err := idParam(r)
		if err != nil {
			return err
		}
		var req noteBody
		if err := decodeOptional(w, r, &req); err != nil {
			return err
		}
		inc, err := s.resp.Escalate(r.Context(), p.actor(), id, down)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, inc)
		return nil
	}
}

func (s *server) handoffIncident(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	var req struct {
		Team  string `json:"team"`
		Note  string `json:"note"`
		Joint bool   `json:"joint"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	inc, err := s.resp.Handoff(r.Context(), p.actor(), id, req.Team, req.Joint, req.Note)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, inc)
	return nil
}

func (s *server) assignIncident(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	var req struct {
		Owner string `json:"owner"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Owner) == "" {
		return badRequest("owner", "owner is required (a user name)")
	}
	inc, err := s.resp.Assign(r.Context(), p.actor(), id, req.Owner)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, inc)
	return nil
}

func (s *server) addNote(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	var req struct {
		Text string `json:"text"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	inc, err := s.resp.AddNote(r.Context(), p.actor(), id, req.Text)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, inc)
	return nil
}

func (s *server) addTask(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	var req struct {
		Title string `json:"title"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	t, err := s.resp.AddTask(r.Context(), p.actor(), id, req.Title)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, t)
	return nil
}

func (s *server) setTaskDone(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	v := r.PathValue("task")
	taskID, err := strconv.ParseInt(v, 10, 64)
	if err != nil || taskID < 1 {
		return badRequest("task", "task must be a positive integer, got %q", v)
	}
	var req struct {
		Done *bool `json:"done"`
	}
	if err := decodeOptional(w, r, &req); err != nil {
		return err
	}
	done := req.Done == nil || *req.Done
	t, err := s.resp.SetTaskDone(r.Context(), p.actor(), id, taskID, done)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (s *server) addObservable(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	var req struct {
		Type  string `json:"type"`
		Value string `json:"value"`
		TLP   string `json:"tlp"`
		Note  string `json:"note"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	o, err := s.resp.AddObservable(r.Context(), p.actor(), id, incident.Observable{Type: req.Type, Value: req.Value, TLP: req.TLP, Note: req.Note})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, o)
	return nil
}

func (s *server) putPostmortem(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	var req struct {
		Category            string                `json:"category"`
		Summary             string                `json:"summary"`
		ContributingFactors []string              `json:"contributing_factors"`
		ActionItems         []incident.ActionItem `json:"action_items"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	pm, err := s.resp.SavePostmortem(r.Context(), p.actor(), id, incident.Postmortem{
		Category: req.Category, Summary: req.Summary, ContributingFactors: req.ContributingFactors, ActionItems: req.ActionItems,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pm)
	return nil
}

func (s *server) getPostmortem(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	if _, err := s.st.GetIncident(r.Context(), id); err != nil {
		return err
	}
	pm, err := s.st.Postmortem(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return &HTTPError{Status: http.StatusNotFound, Msg: fmt.Sprintf("incident %d has no postmortem yet", id)}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pm)
	return nil
}

func (s *server) mergeIncident(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	var req struct {
		Into int64 `json:"into"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Into < 1 {
		return badRequest("into", "into is required: the id of the incident to merge this one into")
	}
	if _, err := s.st.GetIncident(r.Context(), req.Into); errors.Is(err, store.ErrNotFound) {
		return badRequest("into", "incident %d does not exist", req.Into)
	}
	inc, err := s.resp.Merge(r.Context(), p.actor(), id, req.Into)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, inc)
	return nil
}

func (s *server) moveAlert(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	var req struct {
		IncidentID *int64 `json:"incident_id"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.IncidentID == nil || *req.IncidentID < 0 {
		return badRequest("incident_id", "incident_id is required: the incident to move the alert to, or 0 to split it out into a new incident")
	}
	inc, err := s.resp.MoveAlert(r.Context(), p.actor(), id, *req.IncidentID)
	if err != nil {
		return err
	}
	// The reply is the incident the alert now belongs to.
	a, err := s.st.GetAlert(r.Context(), id)
	if err != nil {
		return err
	}
	dst, err := s.resp.Get(r.Context(), a.IncidentID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"alert": a, "incident": dst, "from": inc})
	return nil
}
