package ui

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/event"
	"github.com/nocsoc/nocsoc/internal/eventstore"
	"github.com/nocsoc/nocsoc/internal/query"
)

// searchPresets are the Investigate page's time ranges, in display order.
var searchPresets = []struct {
	Key string
	D   time.Duration
}{{"15m", 15 * time.Minute}, {"1h", time.Hour}, {"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}}

// pageSize is how many events one Investigate page shows.
const pageSize = 50

// localTimeLayout is the value format of <input type="datetime-local">;
// the console reads and writes it as UTC.
const localTimeLayout = "2006-01-02T15:04"

// entityFields maps event fields to the pivot entity their values name.
var entityFields = map[string]string{
	"host.name": eventstore.EntityHost, "source.ip": eventstore.EntityIP, "destination.ip": eventstore.EntityIP,
	"user.name": eventstore.EntityUser,
}

// Cell is one shown value; Entity is set when it links to a pivot.
type Cell struct {
	Value, Entity string
}

// PivotURL is the link to the value's pivot timeline.
func (c Cell) PivotURL() string {
	return "/investigate/pivot?entity=" + url.QueryEscape(c.Entity) + "&value=" + url.QueryEscape(c.Value)
}

// EventRow is one result row.
type EventRow struct {
	ID       uint64
	Time     time.Time
	Host     Cell
	Message  string
	Entities []Cell // source/destination IP and user, when present
	Fields   []Cell // the chosen columns, in order
}

// InvestigateData is the Investigate page's data.
type InvestigateData struct {
	Q, Range, From, To string
	Fields             []string
	FieldsText         string
	Presets            []string
	// QueryError is the query syntax error; Caret points at its position.
	QueryError string
	QueryPos   int
	Caret      string
	Histogram  template.HTML
	Interval   string
	Total      int64
	Rows       []EventRow
	Next       string
	Searched   bool
	// Unloaded counts the events acknowledged before the search that the
	// event store had not loaded within its search wait: the results
	// leave them out.
	Unloaded     int
	ExportNDJSON string
	ExportCSV    string
}

// searchParams is a parsed Investigate request.
type searchParams struct {
	q                string
	where            query.Node
	rangeKey         string
	from, to         time.Time
	fromText, toText string
	fields           []string
}

// parseSearch reads q, range, from, to and fields. A bad value is a
// *httpError naming the field; a query syntax error is returned as is.
func (u *UI) parseSearch(r *http.Request) (searchParams, error) {
	v := r.URL.Query()
	p := searchParams{q: strings.TrimSpace(v.Get("q")), rangeKey: v.Get("range")}
	for _, f := range strings.FieldsFunc(v.Get("fields"), func(r rune) bool { return r == ',' || r == ' ' }) {
		if len(p.fields) < 10 && !slices.Contains(p.fields, f) {
			p.fields = append(p.fields, f)
		}
	}
	now := u.now().UTC()
	p.to = now
	switch p.rangeKey {
	case "custom":
		var err error
		p.fromText, p.toText = v.Get("from"), v.Get("to")
		if p.from, err = time.Parse(localTimeLayout, p.fromText); err != nil {
			return p, errorf(http.StatusUnprocessableEntity, "from: enter a time like 2026-05-01T13:00 (UTC), got %q.", p.fromText)
		}
		if p.toText == "" {
			p.toText = now.Format(localTimeLayout)
		} else if p.to, err = time.Parse(localTimeLayout, p.toText); err != nil {
			return p, errorf(http.StatusUnprocessableEntity, "to: enter a time like 2026-05-01T14:00 (UTC), got %q.", p.toText)
		}
		if !p.to.After(p.from) {
			return p, errorf(http.StatusUnprocessableEntity, "to: must be after from.")
		}
	default:
		d := time.Duration(0)
		for _, pr := range searchPresets {
			if pr.Key == p.rangeKey {
				d = pr.D
			}
		}
		if d == 0 {
			p.rangeKey, d = "1h", time.Hour
		}
		p.from = now.Add(-d)
		p.fromText, p.toText = p.from.Format(localTimeLayout), now.Format(localTimeLayout)
	}
	if p.q != "" {
		n, err := query.Parse(p.q)
		if err != nil {
			return p, err
		}
		p.where = n
	}
	return p, nil
}

// histogramInterval picks a bucket width giving at most ~60 bars.
func histogramInterval(span time.Duration) time.Duration {
	for _, d := range []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute, 10 * time.Minute,
		15 * time.Minute, 30 * time.Minute, time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour} {
		if span/d <= 60 {
			return d
		}
	}
	return 7 * 24 * time.Hour
}

func (u *UI) investigatePage(w http.ResponseWriter, r *http.Request) error {
	if u.ext.search == nil {
		return errorf(http.StatusServiceUnavailable, "Log search needs the event store, which does not support it here.")
	}
	d := InvestigateData{}
	for _, p := range searchPresets {
		d.Presets = append(d.Presets, p.Key)
	}
	page := Page{Title: "Investigate", Nav: "investigate", Data: &d}
	p, err := u.parseSearch(r)
	d.Q, d.Range, d.From, d.To, d.Fields = p.q, p.rangeKey, p.fromText, p.toText, p.fields
	d.FieldsText = strings.Join(p.fields, ",")
	var syn *query.SyntaxError
	var he *httpError
	switch {
	case errors.As(err, &syn):
		d.QueryError, d.QueryPos = syn.Msg, syn.Pos
		d.Caret = strings.Repeat(" ", max(syn.Pos-1, 0)) + "^"
		page.Error = fmt.Sprintf("q: syntax error at position %d: %s", syn.Pos, syn.Msg)
		return u.render(w, r, http.StatusUnprocessableEntity, "investigate", page)
	case errors.As(err, &he):
		page.Error = he.msg
		return u.render(w, r, he.status, "investigate", page)
	case err != nil:
		return err
	}
	ctx := r.Context()
	d.Searched = true
	iv := histogramInterval(p.to.Sub(p.from))
	d.Interval = iv.String()
	if d.Unloaded, err = u.ext.search.AwaitSearchable(ctx, u.ext.search.SearchWait()); err != nil {
		return err
	}
	buckets, err := u.ext.search.EventStats(ctx, eventstore.StatsQuery{Where: p.where, From: p.from, To: p.to, Interval: iv, NoWait: true})
	if err != nil {
		return searchFailed(err)
	}
	bars := make([]Bar, 0, len(buckets))
	for _, b := range buckets {
		d.Total += b.Count
		bars = append(bars, Bar{Time: b.Time, Value: float64(b.Count)})
	}
	d.Histogram = Histogram(bars, p.from, p.to, iv, 1100, 120)
	evs, next, err := u.ext.search.SearchEvents(ctx, eventstore.EventQuery{Where: p.where, From: p.from, To: p.to,
		Limit: pageSize, Cursor: r.URL.Query().Get("cursor"), NoWait: true})
	if err != nil {
		return searchFailed(err)
	}
	for i := range evs {
		d.Rows = append(d.Rows, eventRow(&evs[i], p.fields))
	}
	base := url.Values{"q": {p.q}, "range": {p.rangeKey}, "fields": {d.FieldsText}}
	if p.rangeKey == "custom" {
		base.Set("from", p.fromText)
		base.Set("to", p.toText)
	} else {
		// Pin the range, so the next page and the export cover the
		// events shown rather than a window that moved on.
		base.Set("range", "custom")
		base.Set("from", p.from.Format(localTimeLayout))
		base.Set("to", p.to.Add(time.Minute).Truncate(time.Minute).Format(localTimeLayout))
	}
	if next != "" {
		nv := cloneValues(base)
		nv.Set("cursor", next)
		d.Next = "/investigate?" + nv.Encode()
	}
	ev := cloneValues(base)
	ev.Set("format", "ndjson")
	d.ExportNDJSON = "/investigate/export?" + ev.Encode()
	ev.Set("format", "csv")
	d.ExportCSV = "/investigate/export?" + ev.Encode()
	return u.render(w, r, http.StatusOK, "investigate", page)
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// searchFailed shows a query the store could not compile (an unknown
// field, a bad cursor) as the user's error, anything else as a 500.
func searchFailed(err error) error {
	msg := err.Error()
	if strings.Contains(msg, "cursor") || strings.Contains(msg, "field") || strings.Contains(msg, "query") {
		return &httpError{status: http.StatusUnprocessableEntity, msg: "q: " + msg, err: err}
	}
	return err
}

func fieldText(e *event.Event, name string) string {
	v, ok := e.Get(name)
	if !ok || v == nil {
		return ""
	}
	switch x := v.(type) {
	case string:
		return x
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	}
	return fmt.Sprint(v)
}

func eventRow(e *event.Event, fields []string) EventRow {
	row := EventRow{ID: e.ID, Time: e.Time, Host: Cell{Value: e.Host, Entity: eventstore.EntityHost}, Message: fieldText(e, "message")}
	if row.Message == "" {
		row.Message = e.Raw
	}
	for _, f := range []string{"source.ip", "destination.ip", "user.name"} {
		if s := fieldText(e, f); s != "" {
			row.Entities = append(row.Entities, Cell{Value: s, Entity: entityFields[f]})
		}
	}
	for _, f := range fields {
		c := Cell{Value: fieldText(e, f)}
		if c.Value != "" {
			c.Entity = entityFields[f]
		}
		row.Fields = append(row.Fields, c)
	}
	return row
}

// exportEvents streams the search as NDJSON or CSV with the session's
// rights, so the console needs no API token for it. Exports are audited.
func (u *UI) exportEvents(w http.ResponseWriter, r *http.Request) error {
	if u.ext.search == nil {
		return errorf(http.StatusServiceUnavailable, "Export needs the event store.")
	}
	p, err := u.parseSearch(r)
	var syn *query.SyntaxError
	if errors.As(err, &syn) {
		return errorf(http.StatusUnprocessableEntity, "q: syntax error at position %d: %s", syn.Pos, syn.Msg)
	} else if err != nil {
		return err
	}
	format := r.URL.Query().Get("format")
	ctype := "application/x-ndjson"
	switch format {
	case "", eventstore.FormatNDJSON:
		format = eventstore.FormatNDJSON
	case eventstore.FormatCSV:
		ctype = "text/csv; charset=utf-8"
	default:
		return errorf(http.StatusUnprocessableEntity, "format: must be ndjson or csv, got %q.", format)
	}
	if err := u.st.AppendAudit(r.Context(), actorOf(r), "events.export", "events",
		nil, map[string]any{"q": p.q, "from": p.from, "to": p.to, "format": format}); err != nil {
		return err
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="nocsoc-events-%s.%s"`, u.now().UTC().Format("20060102T150405Z"), format))
	// Once rows are streaming the status is sent: a failure can only be
	// logged and the file ends short.
	if _, err := u.ext.search.ExportEvents(r.Context(), eventstore.EventQuery{Where: p.where, From: p.from, To: p.to}, w, format); err != nil {
		u.log.Error("export events", "err", err)
	}
	return nil
}

// PivotItem is one entry of an entity's timeline.
type PivotItem struct {
	Time    time.Time
	Kind    string // event, alert, incident, state_change
	Summary string
	Link    string
	Author  string // the detection rule's author, for alerts it raised
	Event   *EventRow
}

// PivotData is the pivot page's data.
type PivotData struct {
	Entity, Value string
	From, To      time.Time
	Window        string
	Windows       []WindowLink
	SearchURL     string
	Items         []PivotItem
	// Unloaded is InvestigateData.Unloaded for the pivot's events.
	Unloaded int
}

// WindowLink is one of the pivot's window choices.
type WindowLink struct{ Key, URL string }

// pivotSearchField is the field an entity is searched by on Investigate.
var pivotSearchField = map[string]string{
	eventstore.EntityIP: "source.ip", eventstore.EntityUser: "user.name", eventstore.EntityHost: "host.name",
}

// pivotKeys are the alert labels that name each kind of entity; they
// match GET /api/v1/pivot's.
var pivotKeys = map[string][]string{
	eventstore.EntityIP:   {"source.ip", "destination.ip", "ip"},
	eventstore.EntityUser: {"user.name", "user"},
	eventstore.EntityHost: {"host.name", "host", "instance", "check"},
}

// pivotPage shows every event, alert, incident and check state change
// that touched an entity around a time: the same store calls as
// GET /api/v1/pivot, drawn as a timeline.
func (u *UI) pivotPage(w http.ResponseWriter, r *http.Request) error {
	if u.ext.search == nil || u.ext.ops == nil {
		return errorf(http.StatusServiceUnavailable, "The pivot needs the event and state stores.")
	}
	q := r.URL.Query()
	d := PivotData{Entity: q.Get("entity"), Value: strings.TrimSpace(q.Get("value")), Window: q.Get("window")}
	keys, ok := pivotKeys[d.Entity]
	if !ok {
		return errorf(http.StatusUnprocessableEntity, "entity: must be ip, user or host, got %q.", d.Entity)
	}
	if d.Value == "" {
		return errorf(http.StatusUnprocessableEntity, "value: is required.")
	}
	around := u.now()
	if v := q.Get("around"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return errorf(http.StatusUnprocessableEntity, "around: give an RFC 3339 time, got %q.", v)
		}
		around = t
	}
	window := 24 * time.Hour
	if d.Window == "" {
		d.Window = "24h"
	} else if w, err := time.ParseDuration(d.Window); err != nil || w <= 0 || w > 90*24*time.Hour {
		return errorf(http.StatusUnprocessableEntity, "window: give a duration like 2h (at most 2160h), got %q.", d.Window)
	} else {
		window = w
	}
	d.From, d.To = around.Add(-window), around.Add(window)
	for _, k := range []string{"1h", "6h", "24h", "72h"} {
		d.Windows = append(d.Windows, WindowLink{Key: k, URL: "/investigate/pivot?" + url.Values{"entity": {d.Entity}, "value": {d.Value}, "window": {k}}.Encode()})
	}
	d.SearchURL = "/investigate?" + url.Values{"q": {pivotSearchField[d.Entity] + ":" + strconv.Quote(d.Value)}, "range": {"24h"}}.Encode()
	ctx := r.Context()
	var err error
	if d.Unloaded, err = u.ext.search.AwaitSearchable(ctx, u.ext.search.SearchWait()); err != nil {
		return err
	}
	evs, err := u.ext.search.EntityEvents(ctx, eventstore.EntityQuery{Entity: d.Entity, Value: d.Value, From: d.From, To: d.To, Limit: 500, NoWait: true})
	if err != nil {
		return err
	}
	for i := range evs {
		row := eventRow(&evs[i], nil)
		d.Items = append(d.Items, PivotItem{Time: evs[i].Time, Kind: "event", Summary: row.Message, Event: &row})
	}
	alerts, err := u.ext.ops.AlertsByLabelValue(ctx, keys, d.Value, d.From, d.To, 500)
	if err != nil {
		return err
	}
	incidents := map[int64]bool{}
	for _, a := range alerts {
		it := PivotItem{Time: a.StartedAt, Kind: "alert", Summary: fmt.Sprintf("[%s] %s (%s)", a.Severity, a.Title, a.Status),
			Author: a.Annotations["author"]}
		if a.IncidentID != 0 {
			incidents[a.IncidentID] = true
			it.Link = "/incidents/" + strconv.FormatInt(a.IncidentID, 10)
		}
		d.Items = append(d.Items, it)
	}
	for id := range incidents {
		inc, err := u.ext.ops.GetIncident(ctx, id)
		if err != nil {
			continue
		}
		d.Items = append(d.Items, PivotItem{Time: inc.TriggeredAt, Kind: "incident",
			Summary: fmt.Sprintf("#%d %s (%s, %s)", inc.ID, inc.Title, inc.Team, inc.Status), Link: "/incidents/" + strconv.FormatInt(id, 10)})
	}
	if d.Entity != eventstore.EntityUser {
		for _, c := range u.noc.Checks() {
			if !strings.Contains(c.Spec.Target, d.Value) && c.Spec.Name != d.Value {
				continue
			}
			chs, err := u.events.StateChanges(ctx, c.Spec.Name, d.From, d.To, 200)
			if err != nil {
				continue
			}
			for _, ch := range chs {
				d.Items = append(d.Items, PivotItem{Time: ch.Time, Kind: "state_change",
					Summary: fmt.Sprintf("check %s: %s → %s", c.Spec.Name, ch.From, ch.To), Link: "/checks/" + url.PathEscape(c.Spec.Name)})
			}
		}
	}
	// Newest first, like the search results.
	sort.SliceStable(d.Items, func(i, j int) bool { return d.Items[i].Time.After(d.Items[j].Time) })
	return u.render(w, r, http.StatusOK, "pivot", Page{Title: d.Entity + " " + d.Value, Nav: "investigate", Data: d})
}
