package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/event"
	"github.com/nocsoc/nocsoc/internal/eventstore"
	"github.com/nocsoc/nocsoc/internal/ingest"
	"github.com/nocsoc/nocsoc/internal/query"
	"github.com/nocsoc/nocsoc/internal/store"
)

// EventSink makes events durable and runs detection (the SOC pipeline).
type EventSink interface {
	Write(ctx context.Context, evs []event.Event) error
}

// maxEventsBody bounds a POST /api/v1/events body.
const maxEventsBody = 16 << 20

// postEvents accepts NDJSON or a JSON array of events. The reply comes
// only after the accepted events are durable; malformed lines are named by
// number and the rest of the batch is still accepted.
func (s *server) postEvents(w http.ResponseWriter, r *http.Request, p principal) error {
	if s.sink == nil {
		return &HTTPError{Status: http.StatusServiceUnavailable, Msg: "event intake is not configured"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEventsBody))
	if err != nil {
		return err
	}
	evs, lineErrs := ingest.ParseJSONEvents(body, s.now())
	if len(evs) == 0 && len(lineErrs) > 0 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"accepted": 0, "error": "no event in the body could be read", "errors": lineErrs})
		return nil
	}
	for i := range evs {
		evs[i].Input = "http"
		if s.normalize != nil {
			s.normalize(&evs[i])
		}
	}
	if err := s.sink.Write(r.Context(), evs); err != nil {
		return err
	}
	resp := map[string]any{"accepted": len(evs)}
	if len(lineErrs) > 0 {
		resp["errors"] = lineErrs
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *server) parseQuery(r *http.Request) (query.Node, error) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if q == "" {
		return nil, nil
	}
	n, err := query.Parse(q)
	if err != nil {
		return nil, badRequest("q", "query: %v", err)
	}
	return n, nil
}

func eventJSON(e event.Event) map[string]any {
	out := make(map[string]any, len(e.Fields)+6)
	for k, v := range e.Fields {
		out[k] = v
	}
	out["id"] = e.ID
	out["@timestamp"] = e.Time.UTC()
	out["received"] = e.Received.UTC()
	if e.Host != "" {
		out["host.name"] = e.Host
	}
	out["input"] = e.Input
	if e.Raw != "" {
		out["raw"] = e.Raw
	}
	if e.ParseError != "" {
		out["parse_error"] = e.ParseError
	}
	return out
}

func (s *server) searchEvents(w http.ResponseWriter, r *http.Request, p principal) error {
	where, err := s.parseQuery(r)
	if err != nil {
		return err
	}
	from, to, err := s.timeRange(r, 24*time.Hour)
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit", 100, eventstore.MaxLimit)
	if err != nil {
		return err
	}
	unloaded, err := s.events.AwaitSearchable(r.Context(), s.events.SearchWait())
	if err != nil {
		return err
	}
	evs, next, err := s.events.SearchEvents(r.Context(), eventstore.EventQuery{Where: where, From: from, To: to, Limit: limit, Cursor: r.URL.Query().Get("cursor"), NoWait: true})
	if err != nil {
		return searchError(err)
	}
	out := make([]map[string]any, len(evs))
	for i, e := range evs {
		out[i] = eventJSON(e)
	}
	resp := map[string]any{"events": out, "from": from.UTC(), "to": to.UTC()}
	if next != "" {
		resp["next_cursor"] = next
	}
	if unloaded > 0 {
		resp["unloaded_events"] = unloaded
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// searchError turns query compilation problems into 400s.
func searchError(err error) error {
	msg := err.Error()
	if strings.Contains(msg, "cursor") || strings.Contains(msg, "field") || strings.Contains(msg, "query") {
		return badRequest("q", "%s", msg)
	}
	return err
}

func (s *server) eventStats(w http.ResponseWriter, r *http.Request, p principal) error {
	where, err := s.parseQuery(r)
	if err != nil {
		return err
	}
	from, to, err := s.timeRange(r, 24*time.Hour)
	if err != nil {
		return err
	}
	q := eventstore.StatsQuery{Where: where, From: from, To: to, By: r.URL.Query().Get("by")}
	if v := r.URL.Query().Get("interval"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return badRequest("interval", "interval must be a duration like 1m, got %q", v)
		}
		q.Interval = d
	}
	if q.By == "" && q.Interval == 0 {
		return badRequest("by", "give by=FIELD (top values), interval=DURATION (histogram) or both")
	}
	if q.Limit, err = intParam(r, "limit", 10, 1000); err != nil {
		return err
	}
	unloaded, err := s.events.AwaitSearchable(r.Context(), s.events.SearchWait())
	if err != nil {
		return err
	}
	q.NoWait = true
	buckets, err := s.events.EventStats(r.Context(), q)
	if err != nil {
		return searchError(err)
	}
	if buckets == nil {
		buckets = []eventstore.Bucket{}
	}
	resp := map[string]any{"buckets": buckets, "by": q.By, "interval": q.Interval.String(), "from": from.UTC(), "to": to.UTC()}
	if unloaded > 0 {
		resp["unloaded_events"] = unloaded
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *server) exportEvents(w http.ResponseWriter, r *http.Request, p principal) error {
	where, err := s.parseQuery(r)
	if err != nil {
		return err
	}
	from, to, err := s.timeRange(r, 24*time.Hour)
	if err != nil {
		return err
	}
	format := r.URL.Query().Get("format")
	switch format {
	case "", "ndjson":
		format = eventstore.FormatNDJSON
		w.Header().Set("Content-Type", "application/x-ndjson")
	case "csv":
		format = eventstore.FormatCSV
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	default:
		return badRequest("format", "format must be ndjson or csv, got %q", format)
	}
	limit := 0
	if r.URL.Query().Get("limit") != "" {
		if limit, err = intParam(r, "limit", 0, 10_000_000); err != nil {
			return err
		}
	}
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="nocsoc-events-%s.%s"`, s.now().UTC().Format("20060102T150405Z"), format))
	if _, err := s.events.ExportEvents(r.Context(), eventstore.EventQuery{Where: where, From: from, To: to, Limit: limit}, w, format); err != nil {
		s.log.Error("export events", "err", err)
	}
	return nil
}

// pivotItem is one entry of an investigation timeline.
type pivotItem struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"` // event, alert, state_change, incident
	Summary string    `json:"summary"`
	Ref     string    `json:"ref"`
	Data    any       `json:"data,omitempty"`
}

// pivot returns every event, alert, check state change and incident that
// touched an entity (ip, user, host) around a time, as one timeline.
func (s *server) pivot(w http.ResponseWriter, r *http.Request, p principal) error {
	q := r.URL.Query()
	entity, value := q.Get("entity"), strings.TrimSpace(q.Get("value"))
	labelKeys := map[string][]string{
		eventstore.EntityIP:   {"source.ip", "destination.ip", "ip"},
		eventstore.EntityUser: {"user.name", "user"},
		eventstore.EntityHost: {"host.name", "host", "instance", "check"},
	}
	keys, ok := labelKeys[entity]
	if !ok {
		return badRequest("entity", "entity must be ip, user or host, got %q", entity)
	}
	if value == "" {
		return badRequest("value", "value is required")
	}
	around := s.now()
	if v := q.Get("around"); v != "" {
		t, err := s.parseTime(v)
		if err != nil {
			return badRequest("around", "around: %v", err)
		}
		around = t
	}
	window := 24 * time.Hour
	if v := q.Get("window"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return badRequest("window", "window must be a duration like 2h, got %q", v)
		}
		window = d
	}
	from, to := around.Add(-window), around.Add(window)
	ctx := r.Context()
	var items []pivotItem
	unloaded, err := s.events.AwaitSearchable(ctx, s.events.SearchWait())
	if err != nil {
		return err
	}
	evs, err := s.events.EntityEvents(ctx, eventstore.EntityQuery{Entity: entity, Value: value, From: from, To: to, Limit: 500, NoWait: true})
	if err != nil {
		return err
	}
	for _, e := range evs {
		msg, _ := e.Fields["message"].(string)
		if msg == "" {
			msg = e.Raw
		}
		items = append(items, pivotItem{Time: e.Time.UTC(), Kind: "event", Summary: msg, Ref: "event:" + strconv.FormatUint(e.ID, 10), Data: eventJSON(e)})
	}
	alerts, err := s.st.AlertsByLabelValue(ctx, keys, value, from, to, 500)
	if err != nil {
		return err
	}
	incidents := map[int64]bool{}
	for _, a := range alerts {
		items = append(items, pivotItem{Time: a.StartedAt.UTC(), Kind: "alert", Summary: fmt.Sprintf("[%s] %s (%s)", a.Severity, a.Title, a.Status), Ref: "alert:" + strconv.FormatInt(a.ID, 10), Data: a})
		if a.IncidentID != 0 {
			incidents[a.IncidentID] = true
		}
	}
	for id := range incidents {
		inc, err := s.st.GetIncident(ctx, id)
		if err != nil {
			continue
		}
		items = append(items, pivotItem{Time: inc.TriggeredAt.UTC(), Kind: "incident", Summary: fmt.Sprintf("#%d %s (%s, %s)", inc.ID, inc.Title, inc.Team, inc.Status), Ref: "incident:" + strconv.FormatInt(id, 10), Data: inc})
	}
	if entity != eventstore.EntityUser && s.noc != nil {
		for _, c := range s.noc.Checks() {
			if !strings.Contains(c.Spec.Target, value) && c.Spec.Name != value {
				continue
			}
			chs, err := s.events.StateChanges(ctx, c.Spec.Name, from, to, 200)
			if err != nil {
				continue
			}
			for _, ch := range chs {
				items = append(items, pivotItem{Time: ch.Time.UTC(), Kind: "state_change", Summary: fmt.Sprintf("check %s: %s → %s", c.Spec.Name, ch.From, ch.To), Ref: "check:" + c.Spec.Name})
			}
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].Time.Before(items[j].Time) })
	if items == nil {
		items = []pivotItem{}
	}
	resp := map[string]any{"entity": entity, "value": value, "from": from.UTC(), "to": to.UTC(), "timeline": items}
	if unloaded > 0 {
		resp["unloaded_events"] = unloaded
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

var _ = store.ErrNotFound
