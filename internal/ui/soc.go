package ui

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/incident"
	"github.com/nocsoc/nocsoc/internal/response"
	"github.com/nocsoc/nocsoc/internal/runbook"
	"github.com/nocsoc/nocsoc/internal/store"
)

// IncidentStore is what the SOC queue and the incident pages read (and
// the silences they create). *store.Store implements it; New takes it from
// Options.Store when Options.Response is set.
type IncidentStore interface {
	ListAlerts(ctx context.Context, f store.AlertFilter) ([]alert.Alert, error)
	GetAlert(ctx context.Context, id int64) (alert.Alert, error)
	ListIncidents(ctx context.Context, f store.IncidentFilter) ([]incident.Incident, error)
	GetIncident(ctx context.Context, id int64) (incident.Incident, error)
	IncidentAlerts(ctx context.Context, incidentID int64, limit int, beforeID int64) ([]alert.Alert, int, error)
	Timeline(ctx context.Context, incidentID int64, limit int, afterID int64) ([]incident.TimelineEntry, error)
	Tasks(ctx context.Context, incidentID int64) ([]incident.Task, error)
	Observables(ctx context.Context, incidentID int64) ([]incident.Observable, error)
	Postmortem(ctx context.Context, incidentID int64) (incident.Postmortem, error)
	GetRunbook(ctx context.Context, id int64) (runbook.Runbook, error)
	CreateSilence(ctx context.Context, actor store.Actor, s alert.Silence) (alert.Silence, error)
}

// socState is the incident side of the console: nil fields mean the
// console runs without the incident service (the pages answer 503).
type socState struct {
	resp  *response.Service
	st    IncidentStore
	unsub func()
}

func (s *socState) close() {
	if s.unsub != nil {
		s.unsub()
	}
}

// initSOC connects the queue and incident pages to the incident service
// and forwards its committed intake batches to open consoles.
func (u *UI) initSOC(o Options) error {
	if o.Response == nil {
		return nil
	}
	st, ok := o.Store.(IncidentStore)
	if !ok {
		return errors.New("ui: Options.Response needs an Options.Store that implements ui.IncidentStore")
	}
	u.soc = socState{resp: o.Response, st: st}
	u.soc.unsub = o.Response.Subscribe(u.alertsCommitted)
	return nil
}

// socRoutes registers the SOC queue and incident pages.
func (u *UI) socRoutes(m *http.ServeMux) {
	m.Handle("GET /soc", u.authed(auth.RoleViewer, u.socQueue))
	m.Handle("GET /soc/rows", u.authed(auth.RoleViewer, u.socRows))
	m.Handle("POST /soc/action", u.authed(auth.RoleOperator, u.socAction))
	m.Handle("GET /soc/alerts/{id}/silence", u.authed(auth.RoleOperator, u.silencePage))
	m.Handle("POST /soc/alerts/{id}/silence", u.authed(auth.RoleOperator, u.createSilence))
	m.Handle("GET /incidents", u.authed(auth.RoleViewer, u.incidentBoard))
	m.Handle("GET /incidents/{id}", u.authed(auth.RoleViewer, u.incidentPage))
	m.Handle("POST /incidents/{id}/{action}", u.authed(auth.RoleOperator, u.incidentAction))
	m.Handle("POST /incidents/{id}/tasks/{task}", u.authed(auth.RoleOperator, u.taskDone))
}

// alertEvent is the payload of the "alert" event: one per committed intake
// batch that opened or changed alerts, so a burst costs one event.
type alertEvent struct {
	Newest int64 `json:"newest"`
	Count  int   `json:"count"`
}

// alertsCommitted runs on the incident service's intake goroutine under
// its lock: it must not block, and Publish does not.
func (u *UI) alertsCommitted(outs []response.Outcome) {
	ev := alertEvent{}
	for _, o := range outs {
		if o.AlertID == 0 || o.Noop {
			continue
		}
		ev.Count++
		ev.Newest = max(ev.Newest, o.AlertID)
	}
	if ev.Count == 0 {
		return
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return
	}
	u.hub.Publish(Event{Name: "alert", Data: data})
}

func (u *UI) socReady() error {
	if u.soc.resp == nil {
		return errorf(http.StatusServiceUnavailable, "The incident service is not connected to this console.")
	}
	return nil
}

// Flash messages survive the redirect after a POST in a short-lived
// cookie, so the message text never travels in a URL someone could craft.
const flashCookie, flashErrCookie = "nocsoc_flash", "nocsoc_flash_err"

func (u *UI) setFlash(w http.ResponseWriter, isErr bool, msg string) {
	name := flashCookie
	if isErr {
		name = flashErrCookie
	}
	if len(msg) > 600 {
		msg = msg[:600] + "…"
	}
	u.setCookie(w, u.cookieName(name), base64.RawURLEncoding.EncodeToString([]byte(msg)), 60)
}

// takeFlash moves a pending flash message onto the page and clears it.
func (u *UI) takeFlash(w http.ResponseWriter, r *http.Request, p *Page) {
	for _, n := range []string{flashCookie, flashErrCookie} {
		c, err := r.Cookie(u.cookieName(n))
		if err != nil || c.Value == "" {
			continue
		}
		u.setCookie(w, u.cookieName(n), "", -1)
		b, err := base64.RawURLEncoding.DecodeString(c.Value)
		if err != nil {
			continue
		}
		if n == flashCookie {
			p.Flash = string(b)
		} else {
			p.Error = string(b)
		}
	}
}

// backTo redirects to the local page named by the form's "back" field (the
// page the action was taken on), else to def.
func backTo(w http.ResponseWriter, r *http.Request, def string) {
	dest := def
	if b := r.PostFormValue("back"); b != "" && localPath(b) == b {
		dest = b
	}
	http.Redirect(w, r, dest, http.StatusSeeOther)
}

// actionError turns a workflow error into the message shown to the user;
// anything unexpected is returned as is (logged, 500).
func actionError(err error) (string, bool) {
	var fe *check.FieldError
	var se *store.FieldError
	var te *incident.ErrTransition
	switch {
	case errors.As(err, &fe), errors.As(err, &se):
		return err.Error(), true
	case errors.As(err, &te):
		return te.Error(), true
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict), errors.Is(err, response.ErrNotOpen):
		return err.Error(), true
	}
	return "", false
}

// queuePageSize is how many alerts one queue page shows: small enough for
// a fast page, big enough to triage from.
const queuePageSize = 100

// searchScan bounds how many alerts a free-text search reads per page, so
// a rare term over 100,000 alerts costs a bounded scan, continued by the
// "older" link.
const searchScan = 5000

// QueueFilter is the SOC queue's filter, as given in the query string.
type QueueFilter struct {
	Team, Severity, Status, Source, Suppressed, Q string
	Before                                        int64
}

// query returns the filter as a query string (without Before).
func (f QueueFilter) query() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"team": f.Team, "severity": f.Severity, "status": f.Status,
		"source": f.Source, "suppressed": f.Suppressed, "q": f.Q} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// QueueData is the SOC queue page's data.
type QueueData struct {
	Filter     QueueFilter
	Alerts     []alert.Alert
	Teams      []string
	Severities []string
	Statuses   []string
	// Older is the link to the next (older) page; empty on the last.
	Older string
	// Newest is the link back to the first page; empty on it.
	Newest string
	// Scanned is set when a search stopped at its scan bound.
	Scanned bool
	// Self is this page's path and query, where actions come back to.
	Self string
	// Top is the newest alert id shown, for the live script.
	Top int64
}

func parseQueueFilter(q url.Values) (QueueFilter, error) {
	f := QueueFilter{Team: q.Get("team"), Severity: q.Get("severity"), Status: q.Get("status"),
		Source: strings.TrimSpace(q.Get("source")), Suppressed: q.Get("suppressed"), Q: strings.TrimSpace(q.Get("q"))}
	if f.Team != "" && f.Team != alert.TeamNOC && f.Team != alert.TeamSOC {
		return f, errorf(http.StatusBadRequest, "team: %q is not noc or soc.", f.Team)
	}
	if f.Severity != "" && !slices.Contains(check.Severities, f.Severity) {
		return f, errorf(http.StatusBadRequest, "severity: %q is not one of %s.", f.Severity, strings.Join(check.Severities, ", "))
	}
	if f.Status != "" && f.Status != alert.StatusFiring && f.Status != alert.StatusResolved {
		return f, errorf(http.StatusBadRequest, "status: %q is not firing or resolved.", f.Status)
	}
	if f.Suppressed != "" && f.Suppressed != "yes" && f.Suppressed != "no" {
		return f, errorf(http.StatusBadRequest, "suppressed: %q is not yes or no.", f.Suppressed)
	}
	if b := q.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return f, errorf(http.StatusBadRequest, "before: %q is not an alert id.", b)
		}
		f.Before = n
	}
	return f, nil
}

// matches reports whether a carries the search text in its title, source
// or a label value (case-insensitive).
func matches(a alert.Alert, q string) bool {
	if q == "" {
		return true
	}
	has := func(s string) bool { return strings.Contains(strings.ToLower(s), q) }
	if has(a.Title) || has(a.Source) || strconv.FormatInt(a.ID, 10) == q {
		return true
	}
	for _, v := range a.Labels {
		if has(v) {
			return true
		}
	}
	return false
}

// loadQueue reads one page of the queue: keyset pagination on id, so the
// hundredth page costs what the first does, and no COUNT over the table.
func (u *UI) loadQueue(ctx context.Context, r *http.Request) (QueueData, error) {
	f, err := parseQueueFilter(r.URL.Query())
	if err != nil {
		return QueueData{}, err
	}
	d := QueueData{Filter: f, Teams: []string{alert.TeamNOC, alert.TeamSOC}, Severities: check.Severities,
		Statuses: []string{alert.StatusFiring, alert.StatusResolved}, Self: r.URL.RequestURI()}
	sf := store.AlertFilter{Team: f.Team, Severity: f.Severity, Status: f.Status, Source: f.Source, BeforeID: f.Before}
	if f.Suppressed != "" {
		b := f.Suppressed == "yes"
		sf.Suppressed = &b
	}
	needle := strings.ToLower(f.Q)
	last, more := int64(0), false
	if needle == "" {
		sf.Limit = queuePageSize + 1
		rows, err := u.soc.st.ListAlerts(ctx, sf)
		if err != nil {
			return d, err
		}
		if len(rows) > queuePageSize {
			rows, more = rows[:queuePageSize], true
		}
		d.Alerts = rows
		if len(rows) > 0 {
			last = rows[len(rows)-1].ID
		}
	} else {
		sf.Limit = 1000
		for scanned := 0; scanned < searchScan && len(d.Alerts) < queuePageSize; {
			rows, err := u.soc.st.ListAlerts(ctx, sf)
			if err != nil {
				return d, err
			}
			for _, a := range rows {
				last = a.ID
				if matches(a, needle) {
					d.Alerts = append(d.Alerts, a)
					if len(d.Alerts) == queuePageSize {
						break
					}
				}
			}
			scanned += len(rows)
			if len(rows) < sf.Limit {
				break // the end of the table
			}
			more = true
			sf.BeforeID = last
			if scanned >= searchScan && len(d.Alerts) < queuePageSize {
				d.Scanned = true
			}
		}
		if len(d.Alerts) == queuePageSize {
			more = true
		}
	}
	q := f.query()
	if more && last > 0 {
		q.Set("before", strconv.FormatInt(last, 10))
		d.Older = "/soc?" + q.Encode()
		q.Del("before")
	}
	if f.Before > 0 {
		d.Newest = "/soc"
		if enc := q.Encode(); enc != "" {
			d.Newest += "?" + enc
		}
	}
	if len(d.Alerts) > 0 {
		d.Top = d.Alerts[0].ID
	}
	return d, nil
}

func (u *UI) socQueue(w http.ResponseWriter, r *http.Request) error {
	if err := u.socReady(); err != nil {
		return err
	}
	d, err := u.loadQueue(r.Context(), r)
	if err != nil {
		return err
	}
	p := Page{Title: "SOC queue", Nav: "soc", Live: true, Data: d}
	u.takeFlash(w, r, &p)
	return u.render(w, r, http.StatusOK, "soc", p)
}

// socRows is the queue's table body alone: the live script re-fetches it
// when new alerts arrive.
func (u *UI) socRows(w http.ResponseWriter, r *http.Request) error {
	if err := u.socReady(); err != nil {
		return err
	}
	d, err := u.loadQueue(r.Context(), r)
	if err != nil {
		return err
	}
	// The rows post back to the full queue page, not to this fragment.
	d.Self = strings.Replace(d.Self, "/soc/rows", "/soc", 1)
	return u.renderTemplate(w, r, http.StatusOK, "soc", "rows", Page{Data: d})
}

// selectedIDs returns the alert ids an action applies to: the single
// "id" of a row button, else every checked "ids" box.
func selectedIDs(r *http.Request) ([]int64, error) {
	raw := r.PostForm["ids"]
	if one := r.URL.Query().Get("id"); one != "" {
		raw = []string{one}
	}
	var ids []int64
	for i, s := range raw {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return nil, &check.FieldError{Field: fmt.Sprintf("ids[%d]", i), Reason: fmt.Sprintf("%q is not an alert id", s)}
		}
		ids = append(ids, n)
	}
	if len(ids) == 0 {
		return nil, &check.FieldError{Field: "ids", Reason: "select at least one alert (x, or the row's box)"}
	}
	if len(ids) > 500 {
		return nil, &check.FieldError{Field: "ids", Reason: "at most 500 alerts at once"}
	}
	return ids, nil
}

// socAction applies one queue action to the selected alerts: ack,
// escalate, assign (the alerts' incidents) or merge (into an incident).
// Input is checked before anything changes; then each alert is acted on
// and the flash says how many succeeded and why others did not.
func (u *UI) socAction(w http.ResponseWriter, r *http.Request) error {
	if err := u.socReady(); err != nil {
		return err
	}
	ctx := r.Context()
	actor := actorOf(r)
	fail := func(err error) error {
		if msg, ok := actionError(err); ok {
			u.setFlash(w, true, msg)
			backTo(w, r, "/soc")
			return nil
		}
		return err
	}
	action := r.PostFormValue("action")
	ids, err := selectedIDs(r)
	if err != nil {
		return fail(err)
	}
	var into int64
	owner := strings.TrimSpace(r.PostFormValue("owner"))
	switch action {
	case "ack", "escalate":
	case "assign":
		if owner == "" {
			return fail(&check.FieldError{Field: "owner", Reason: "name the user to assign to"})
		}
	case "merge":
		s := strings.TrimPrefix(strings.TrimSpace(r.PostFormValue("into")), "#")
		if into, err = strconv.ParseInt(s, 10, 64); err != nil || into <= 0 {
			return fail(&check.FieldError{Field: "into", Reason: fmt.Sprintf("%q is not an incident id", s)})
		}
		if _, err := u.soc.st.GetIncident(ctx, into); err != nil {
			return fail(err)
		}
	default:
		return fail(&check.FieldError{Field: "action", Reason: fmt.Sprintf("unknown action %q", action)})
	}
	alerts := make([]alert.Alert, 0, len(ids))
	for _, id := range ids {
		a, err := u.soc.st.GetAlert(ctx, id)
		if err != nil {
			return fail(err)
		}
		alerts = append(alerts, a)
	}
	done := 0
	var problems []string
	note := func(a alert.Alert, err error) error {
		if err == nil {
			done++
			return nil
		}
		msg, ok := actionError(err)
		if !ok {
			return err
		}
		problems = append(problems, fmt.Sprintf("alert %d: %s", a.ID, msg))
		return nil
	}
	// Incident-level actions apply once per incident, however many of
	// its alerts are selected.
	seen := map[int64]bool{}
	switch action {
	case "ack":
		ops := make([]response.Op, 0, len(alerts))
		var firing []alert.Alert
		for _, a := range alerts {
			if a.Status != alert.StatusFiring {
				problems = append(problems, fmt.Sprintf("alert %d is %s", a.ID, a.Status))
				continue
			}
			ops = append(ops, response.Op{Kind: response.OpAck, Fingerprint: a.Fingerprint, Actor: actor.Name})
			firing = append(firing, a)
		}
		if len(ops) > 0 {
			outs, err := u.soc.resp.Submit(ctx, ops...)
			if err != nil {
				return err
			}
			for i, o := range outs {
				if o.Noop {
					problems = append(problems, fmt.Sprintf("alert %d is no longer firing", firing[i].ID))
					continue
				}
				done++
				if err := u.st.AppendAudit(ctx, actor, "alert.ack", fmt.Sprintf("alert:%d", firing[i].ID), nil, nil); err != nil {
					u.log.Warn("audit ack", "err", err)
				}
			}
		}
	default:
		for _, a := range alerts {
			if a.IncidentID == 0 {
				problems = append(problems, fmt.Sprintf("alert %d is on no incident (suppressed alerts page nobody)", a.ID))
				continue
			}
			if action != "merge" && seen[a.IncidentID] {
				continue
			}
			seen[a.IncidentID] = true
			var err error
			switch action {
			case "escalate":
				_, err = u.soc.resp.Escalate(ctx, actor, a.IncidentID, false)
			case "assign":
				_, err = u.soc.resp.Assign(ctx, actor, a.IncidentID, owner)
			case "merge":
				if a.IncidentID == into {
					problems = append(problems, fmt.Sprintf("alert %d is already on incident %d", a.ID, into))
					continue
				}
				_, err = u.soc.resp.MoveAlert(ctx, actor, a.ID, into)
			}
			if err := note(a, err); err != nil {
				return err
			}
		}
	}
	verbs := map[string]string{"ack": "Acknowledged %d alert(s).", "escalate": "Escalated %d incident(s).",
		"assign": "Assigned %d incident(s) to " + owner + ".", "merge": "Moved %d alert(s) into incident " + strconv.FormatInt(into, 10) + "."}
	if done > 0 || len(problems) == 0 {
		u.setFlash(w, false, fmt.Sprintf(verbs[action], done))
	}
	if len(problems) > 0 {
		u.setFlash(w, true, strings.Join(problems, "; "))
	}
	backTo(w, r, "/soc")
	return nil
}

// SilenceForm is the silence page's form state.
type SilenceForm struct {
	Alert    alert.Alert
	Matchers string
	Duration string
	Comment  string
	Back     string
}

func (u *UI) silenceAlert(r *http.Request) (alert.Alert, error) {
	if err := u.socReady(); err != nil {
		return alert.Alert{}, err
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return alert.Alert{}, errorf(http.StatusNotFound, "No alert %q.", r.PathValue("id"))
	}
	a, err := u.soc.st.GetAlert(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return a, errorf(http.StatusNotFound, "No alert %d.", id)
	}
	return a, err
}

// silenceMatchers prefills a silence from an alert's labels: every label
// as an exact matcher, so the silence mutes this alert and its repeats.
func silenceMatchers(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q\n", k, labels[k])
	}
	return b.String()
}

func (u *UI) silencePage(w http.ResponseWriter, r *http.Request) error {
	a, err := u.silenceAlert(r)
	if err != nil {
		return err
	}
	back := r.URL.Query().Get("back")
	if localPath(back) != back || back == "" {
		back = "/soc"
	}
	f := SilenceForm{Alert: a, Matchers: silenceMatchers(a.Labels), Duration: "2h", Back: back}
	return u.render(w, r, http.StatusOK, "soc_silence", Page{Title: "Silence alert", Nav: "soc", Data: f})
}

// maxSilence bounds a console silence: longer mutes belong in config.
const maxSilence = 30 * 24 * time.Hour

func (u *UI) createSilence(w http.ResponseWriter, r *http.Request) error {
	a, err := u.silenceAlert(r)
	if err != nil {
		return err
	}
	f := SilenceForm{Alert: a, Matchers: r.PostFormValue("matchers"), Duration: strings.TrimSpace(r.PostFormValue("duration")),
		Comment: strings.TrimSpace(r.PostFormValue("comment")), Back: r.PostFormValue("back")}
	if localPath(f.Back) != f.Back || f.Back == "" {
		f.Back = "/soc"
	}
	again := func(msg string) error {
		return u.render(w, r, http.StatusUnprocessableEntity, "soc_silence", Page{Title: "Silence alert", Nav: "soc", Data: f, Error: msg})
	}
	var matchers []string
	for _, line := range strings.Split(f.Matchers, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			matchers = append(matchers, line)
		}
	}
	if len(matchers) == 0 {
		return again("matchers: at least one matcher is required")
	}
	d, err := time.ParseDuration(f.Duration)
	if err != nil || d <= 0 || d > maxSilence {
		return again(fmt.Sprintf("duration: %q is not a duration between 1m and 720h, like 2h", f.Duration))
	}
	if f.Comment == "" {
		return again("comment: say why the alert is silenced")
	}
	now := u.now()
	// Compile first: a bad matcher fails here, naming its line, and
	// nothing is stored.
	if _, err := alert.NewSilenceSet([]alert.Silence{{Matchers: matchers, StartsAt: now, EndsAt: now.Add(d)}}); err != nil {
		return again(err.Error())
	}
	actor := actorOf(r)
	s, err := u.soc.st.CreateSilence(r.Context(), actor, alert.Silence{Matchers: matchers, StartsAt: now, EndsAt: now.Add(d),
		CreatedBy: actor.Name, Comment: f.Comment, CreatedAt: now})
	if err != nil {
		if msg, ok := actionError(err); ok {
			return again(msg)
		}
		return err
	}
	if err := u.soc.resp.ReloadSilences(r.Context()); err != nil {
		return fmt.Errorf("reload silences: %w", err)
	}
	u.setFlash(w, false, fmt.Sprintf("Silence %d created until %s; new alerts matching it are suppressed.", s.ID, s.EndsAt.UTC().Format("2006-01-02 15:04Z")))
	http.Redirect(w, r, f.Back, http.StatusSeeOther)
	return nil
}
