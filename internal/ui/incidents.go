package ui

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/incident"
	"github.com/nocsoc/nocsoc/internal/oncall"
	"github.com/nocsoc/nocsoc/internal/runbook"
	"github.com/nocsoc/nocsoc/internal/store"
)

// boardStatuses are the board's columns, in workflow order.
var boardStatuses = []string{incident.StatusTriggered, incident.StatusAcknowledged,
	incident.StatusInvestigating, incident.StatusMitigated, incident.StatusResolved}

// boardColumn caps the cards per column: the newest are what matter.
const boardColumn = 50

// BoardColumn is one status column of the incident board.
type BoardColumn struct {
	Status    string
	Incidents []incident.Incident
	// Full is set when the column holds more than it shows.
	Full bool
}

// BoardData is the incident board's data.
type BoardData struct {
	Team    string
	Columns []BoardColumn
}

func (u *UI) incidentBoard(w http.ResponseWriter, r *http.Request) error {
	if err := u.socReady(); err != nil {
		return err
	}
	team := r.URL.Query().Get("team")
	if team != "" && team != alert.TeamNOC && team != alert.TeamSOC {
		return errorf(http.StatusBadRequest, "team: %q is not noc or soc.", team)
	}
	d := BoardData{Team: team}
	for _, st := range boardStatuses {
		// Team filtering is the store's: joint incidents show in both.
		incs, err := u.soc.st.ListIncidents(r.Context(), store.IncidentFilter{Statuses: []string{st}, Team: team, Limit: boardColumn + 1})
		if err != nil {
			return err
		}
		col := BoardColumn{Status: st, Incidents: incs}
		if len(incs) > boardColumn {
			col.Incidents, col.Full = incs[:boardColumn], true
		}
		d.Columns = append(d.Columns, col)
	}
	p := Page{Title: "Incidents", Nav: "incidents", Data: d}
	u.takeFlash(w, r, &p)
	return u.render(w, r, http.StatusOK, "incidents", p)
}

// incidentAlertsPage is how many linked alerts the detail page shows at
// once; an incident of 10,000 alerts pages through them by id.
const incidentAlertsPage = 50

// timelinePage bounds the timeline entries shown at once.
const timelinePage = 300

// EscalationView is the incident's escalation state in words.
type EscalationView struct {
	Policy string
	// Tier is the current tier's name ("L2"), or a note when none paged yet.
	Tier   string
	Tiers  []string
	Round  int
	NextAt *time.Time
}

// IncidentData is the incident detail page's data.
type IncidentData struct {
	Inc          incident.Incident
	Transitions  []string
	Timeline     []incident.TimelineEntry
	TimelineNext string
	// TimelineDesc is set when the timeline is shown newest first;
	// TimelineOrder links to the other order's first page.
	TimelineDesc  bool
	TimelineOrder string
	// TimelineFirst links back to the first page when not on it.
	TimelineFirst string
	Alerts        []alert.Alert
	AlertsTotal   int
	AlertsMore    string
	Tasks         []incident.Task
	Observables   []incident.Observable
	ObsTypes      []string
	TLPs          []string
	Runbook       *runbook.Runbook
	RunbookHTML   template.HTML
	Escalation    EscalationView
	OtherTeam     string
	Postmortem    *incident.Postmortem
	Causes        []string
	Self          string
}

func (u *UI) loadIncident(r *http.Request) (incident.Incident, error) {
	if err := u.socReady(); err != nil {
		return incident.Incident{}, err
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return incident.Incident{}, errorf(http.StatusNotFound, "No incident %q.", r.PathValue("id"))
	}
	inc, err := u.soc.st.GetIncident(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return inc, errorf(http.StatusNotFound, "No incident %d.", id)
	}
	return inc, err
}

// allowedTransitions lists the statuses the workflow lets inc move to, so
// the page shows only buttons that can work.
func allowedTransitions(from string) []string {
	var out []string
	for _, to := range incident.Statuses {
		if to != from && incident.CanTransition(from, to) == nil {
			out = append(out, to)
		}
	}
	return out
}

func (u *UI) escalationView(r *http.Request, inc incident.Incident) EscalationView {
	v := EscalationView{Policy: inc.Policy, Round: inc.EscalationRound, NextAt: inc.NextEscalationAt}
	var pol *oncall.Policy
	if inc.Policy != "" {
		pols, err := u.soc.resp.Policies(r.Context())
		if err != nil {
			u.log.Warn("escalation policies", "err", err)
		}
		for i := range pols {
			if pols[i].Name == inc.Policy {
				pol = &pols[i]
			}
		}
	}
	if pol != nil {
		for i, t := range pol.Tiers {
			name := t.Name
			if name == "" {
				name = fmt.Sprintf("L%d", i+1)
			}
			v.Tiers = append(v.Tiers, name)
		}
	}
	switch {
	case inc.Tier < 0:
		v.Tier = "not paged yet (group wait)"
	case inc.Tier < len(v.Tiers):
		v.Tier = v.Tiers[inc.Tier]
	default:
		v.Tier = fmt.Sprintf("L%d", inc.Tier+1)
	}
	return v
}

func (u *UI) incidentPage(w http.ResponseWriter, r *http.Request) error {
	inc, err := u.loadIncident(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	q := r.URL.Query()
	d := IncidentData{Inc: inc, Transitions: allowedTransitions(inc.Status), ObsTypes: incident.ObservableTypes,
		TLPs: incident.TLPLevels, Escalation: u.escalationView(r, inc), Self: r.URL.RequestURI()}
	d.Causes = append(append(d.Causes, incident.NaturalCauses...), incident.HumanCauses...)
	d.OtherTeam = alert.TeamSOC
	if inc.Team == alert.TeamSOC {
		d.OtherTeam = alert.TeamNOC
	}
	var after, before, tlBefore int64
	if s := q.Get("after"); s != "" {
		if after, err = strconv.ParseInt(s, 10, 64); err != nil || after < 0 {
			return errorf(http.StatusBadRequest, "after: %q is not a timeline entry id.", s)
		}
	}
	switch q.Get("order") {
	case "", "asc":
	case "desc":
		d.TimelineDesc = true
	default:
		return errorf(http.StatusBadRequest, "order: %q is not asc or desc.", q.Get("order"))
	}
	if s := q.Get("before"); s != "" {
		if tlBefore, err = strconv.ParseInt(s, 10, 64); err != nil || tlBefore <= 0 {
			return errorf(http.StatusBadRequest, "before: %q is not a timeline entry id.", s)
		}
	}
	if s := q.Get("alerts_before"); s != "" {
		if before, err = strconv.ParseInt(s, 10, 64); err != nil || before < 0 {
			return errorf(http.StatusBadRequest, "alerts_before: %q is not an alert id.", s)
		}
	}
	if d.TimelineDesc {
		if d.Timeline, err = timelineNewest(ctx, u.soc.st, inc.ID, timelinePage+1, tlBefore); err != nil {
			return err
		}
		if len(d.Timeline) > timelinePage {
			d.Timeline = d.Timeline[:timelinePage]
			d.TimelineNext = fmt.Sprintf("/incidents/%d?order=desc&before=%d#timeline", inc.ID, d.Timeline[timelinePage-1].ID)
		}
		d.TimelineOrder = fmt.Sprintf("/incidents/%d#timeline", inc.ID)
		if tlBefore != 0 {
			d.TimelineFirst = fmt.Sprintf("/incidents/%d?order=desc#timeline", inc.ID)
		}
	} else {
		if d.Timeline, err = u.soc.st.Timeline(ctx, inc.ID, timelinePage+1, after); err != nil {
			return err
		}
		if len(d.Timeline) > timelinePage {
			d.Timeline = d.Timeline[:timelinePage]
			d.TimelineNext = fmt.Sprintf("/incidents/%d?after=%d#timeline", inc.ID, d.Timeline[timelinePage-1].ID)
		}
		d.TimelineOrder = fmt.Sprintf("/incidents/%d?order=desc#timeline", inc.ID)
		if after != 0 {
			d.TimelineFirst = fmt.Sprintf("/incidents/%d#timeline", inc.ID)
		}
	}
	if d.Alerts, d.AlertsTotal, err = u.soc.st.IncidentAlerts(ctx, inc.ID, incidentAlertsPage+1, before); err != nil {
		return err
	}
	if len(d.Alerts) > incidentAlertsPage {
		d.Alerts = d.Alerts[:incidentAlertsPage]
		d.AlertsMore = fmt.Sprintf("/incidents/%d?alerts_before=%d#alerts", inc.ID, d.Alerts[incidentAlertsPage-1].ID)
	}
	if d.Tasks, err = u.soc.st.Tasks(ctx, inc.ID); err != nil {
		return err
	}
	if d.Observables, err = u.soc.st.Observables(ctx, inc.ID); err != nil {
		return err
	}
	if inc.RunbookID != 0 {
		rb, err := u.soc.st.GetRunbook(ctx, inc.RunbookID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			// Deleted since: the page shows no runbook.
		case err != nil:
			return err
		default:
			d.Runbook = &rb
			if d.RunbookHTML, err = runbook.Render(rb.Markdown); err != nil {
				return err
			}
		}
	}
	if !incident.Open(inc.Status) {
		pm, err := u.soc.st.Postmortem(ctx, inc.ID)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		default:
			d.Postmortem = &pm
		}
	}
	p := Page{Title: fmt.Sprintf("#%d %s", inc.ID, inc.Title), Nav: "incidents", Data: d}
	u.takeFlash(w, r, &p)
	return u.render(w, r, http.StatusOK, "incident", p)
}

// incidentAction runs one workflow action posted from the detail page and
// redirects back with a flash message; a refused action changes nothing
// and says why.
func (u *UI) incidentAction(w http.ResponseWriter, r *http.Request) error {
	inc, err := u.loadIncident(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	actor := actorOf(r)
	self := fmt.Sprintf("/incidents/%d", inc.ID)
	form := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	var msg string
	switch r.PathValue("action") {
	case "status":
		to := form("to")
		if _, err = u.soc.resp.SetStatus(ctx, actor, inc.ID, to, form("note")); err == nil {
			msg = "Incident is now " + to + "."
		}
	case "escalate":
		down := form("down") == "1"
		if _, err = u.soc.resp.Escalate(ctx, actor, inc.ID, down); err == nil {
			msg = "Escalated to the next tier."
			if down {
				msg = "De-escalated one tier."
			}
		}
	case "assign":
		if _, err = u.soc.resp.Assign(ctx, actor, inc.ID, form("owner")); err == nil {
			msg = "Assigned to " + form("owner") + "."
		}
	case "handoff":
		team := form("team")
		if _, err = u.soc.resp.Handoff(ctx, actor, inc.ID, team, r.PostFormValue("joint") == "on", r.PostFormValue("note")); err == nil {
			msg = "Handed off to " + strings.ToUpper(team) + "."
		}
	case "note":
		if _, err = u.soc.resp.AddNote(ctx, actor, inc.ID, r.PostFormValue("text")); err == nil {
			msg = "Note added."
		}
	case "tasks":
		if _, err = u.soc.resp.AddTask(ctx, actor, inc.ID, form("title")); err == nil {
			msg = "Task added."
		}
	case "observables":
		o := incident.Observable{Type: form("type"), Value: form("value"), TLP: form("tlp"), Note: form("note")}
		if _, err = u.soc.resp.AddObservable(ctx, actor, inc.ID, o); err == nil {
			msg = "Observable added."
		}
	case "merge":
		s := strings.TrimPrefix(form("into"), "#")
		into, perr := strconv.ParseInt(s, 10, 64)
		if perr != nil || into <= 0 {
			err = fieldErr("into", fmt.Sprintf("%q is not an incident id", s))
			break
		}
		if _, err = u.soc.resp.Merge(ctx, actor, inc.ID, into); err == nil {
			msg = fmt.Sprintf("Merged into incident %d.", into)
			self = fmt.Sprintf("/incidents/%d", into)
		}
	case "postmortem":
		var pm incident.Postmortem
		if pm, err = postmortemOf(r); err == nil {
			if _, err = u.soc.resp.SavePostmortem(ctx, actor, inc.ID, pm); err == nil {
				msg = "Postmortem saved."
			}
		}
	default:
		return errorf(http.StatusNotFound, "No such incident action.")
	}
	if err != nil {
		m, ok := actionError(err)
		if !ok {
			return err
		}
		u.setFlash(w, true, m)
	} else {
		u.setFlash(w, false, msg)
	}
	http.Redirect(w, r, self, http.StatusSeeOther)
	return nil
}

func fieldErr(field, reason string) error {
	return &store.FieldError{Field: field, Reason: reason}
}

// postmortemOf reads the postmortem form: factors one per line, action
// items one per line as "title | owner".
func postmortemOf(r *http.Request) (incident.Postmortem, error) {
	pm := incident.Postmortem{Category: r.PostFormValue("category"), Summary: strings.TrimSpace(r.PostFormValue("summary"))}
	for _, l := range strings.Split(r.PostFormValue("factors"), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			pm.ContributingFactors = append(pm.ContributingFactors, l)
		}
	}
	n := 0
	for _, l := range strings.Split(r.PostFormValue("actions"), "\n") {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		title, owner, ok := strings.Cut(l, "|")
		if !ok {
			return pm, fieldErr(fmt.Sprintf("action items line %d", n+1), fmt.Sprintf("%q is not \"title | owner\"", l))
		}
		pm.ActionItems = append(pm.ActionItems, incident.ActionItem{Title: strings.TrimSpace(title), Owner: strings.TrimSpace(owner)})
		n++
	}
	return pm, nil
}

// taskDone checks or unchecks one task.
func (u *UI) taskDone(w http.ResponseWriter, r *http.Request) error {
	inc, err := u.loadIncident(r)
	if err != nil {
		return err
	}
	taskID, err := strconv.ParseInt(r.PathValue("task"), 10, 64)
	if err != nil {
		return errorf(http.StatusNotFound, "No task %q.", r.PathValue("task"))
	}
	done := r.PostFormValue("done") == "1"
	t, err := u.soc.resp.SetTaskDone(r.Context(), actorOf(r), inc.ID, taskID, done)
	if err != nil {
		m, ok := actionError(err)
		if !ok {
			return err
		}
		u.setFlash(w, true, m)
	} else if done {
		u.setFlash(w, false, "Done: "+t.Title)
	} else {
		u.setFlash(w, false, "Reopened: "+t.Title)
	}
	http.Redirect(w, r, fmt.Sprintf("/incidents/%d#tasks", inc.ID), http.StatusSeeOther)
	return nil
}

// TimelineNewestReader is optionally implemented by an IncidentStore that
// can read a timeline newest first with one indexed query: up to limit
// entries of the incident with id < beforeID (0: from the newest), newest
// first.
type TimelineNewestReader interface {
	TimelineBefore(ctx context.Context, incidentID int64, limit int, beforeID int64) ([]incident.TimelineEntry, error)
}

// timelineScanPage is how many entries the fallback of timelineNewest
// reads per query.
const timelineScanPage = 1000

// timelineNewest returns up to limit entries of an incident with id <
// before (0: no bound), newest first. Without TimelineNewestReader it
// reads the timeline forward in pages and keeps the last limit entries:
// correct, but it reads the whole timeline up to before.
func timelineNewest(ctx context.Context, st IncidentStore, incidentID int64, limit int, before int64) ([]incident.TimelineEntry, error) {
	if r, ok := st.(TimelineNewestReader); ok {
		return r.TimelineBefore(ctx, incidentID, limit, before)
	}
	// ring holds the last limit entries seen, oldest first from head.
	ring := make([]incident.TimelineEntry, 0, limit)
	head := 0
	var after int64
	for {
		page, err := st.Timeline(ctx, incidentID, timelineScanPage, after)
		if err != nil {
			return nil, err
		}
		// The end is an empty page, not a short one: the store may cap
		// the page below timelineScanPage.
		done := len(page) == 0
		for _, e := range page {
			if before != 0 && e.ID >= before {
				done = true
				break
			}
			if len(ring) < limit {
				ring = append(ring, e)
			} else {
				ring[head] = e
				head = (head + 1) % limit
			}
		}
		if done {
			break
		}
		after = page[len(page)-1].ID
	}
	out := make([]incident.TimelineEntry, 0, len(ring))
	for i := len(ring) - 1; i >= 0; i-- {
		out = append(out, ring[(head+i)%len(ring)])
	}
	return out, nil
}
