package eventstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/event"
	"github.com/nocsoc/nocsoc/internal/query"
)

// eventsSchema is migration 2: one table for log events, appended in arrival
// order (ts roughly increasing, id strictly increasing), so DuckDB's per row
// group min/max prune time ranges and id look-ups without an index (an ART
// index would slow appends and live in memory).
//
// The fields analysts filter on most are promoted to typed columns: a scan
// reads only the columns a query names, and low-cardinality strings
// dictionary-compress to a few bits a row. Everything else stays in the
// fields column as JSON text: VARCHAR rather than DuckDB's JSON type, because
// the appender JSON-encodes a Go string bound to a JSON column a second time. source_ip_key and destination_ip_key hold the address as
// 16 big-endian bytes (IPv4 mapped into ::ffff:0:0/96, see query.IPKey),
// so a CIDR filter is a byte range: DuckDB's inet extension is not bundled
// and cannot be loaded offline. Migration 3 (eventsSearchSchema) adds the
// columns that make searches read less.
const eventsSchema = `CREATE TABLE events (
	id                 UBIGINT NOT NULL,
	ts                 TIMESTAMP NOT NULL,
	received           TIMESTAMP NOT NULL,
	host               VARCHAR,
	input              VARCHAR,
	message            VARCHAR,
	source_ip          VARCHAR,
	source_ip_key      BLOB,
	source_port        INTEGER,
	destination_ip     VARCHAR,
	destination_ip_key BLOB,
	user_name          VARCHAR,
	process_name       VARCHAR,
	event_action       VARCHAR,
	event_outcome      VARCHAR,
	event_category     VARCHAR,
	http_status        INTEGER,
	url_path           VARCHAR,
	fields             VARCHAR,
	raw                VARCHAR,
	parse_error        VARCHAR
);`

// promotedField is an ECS field stored in its own column.
type promotedField struct {
	field, col string
	integer    bool   // INTEGER column, else VARCHAR
	ipKey      string // the column holding its IP key, if any
}

// promoted lists the typed columns in table order (after message).
var promoted = [...]promotedField{
	{field: "source.ip", col: "source_ip", ipKey: "source_ip_key"},
	{field: "source.port", col: "source_port", integer: true},
	{field: "destination.ip", col: "destination_ip", ipKey: "destination_ip_key"},
	{field: "user.name", col: "user_name"},
	{field: "process.name", col: "process_name"},
	{field: "event.action", col: "event_action"},
	{field: "event.outcome", col: "event_outcome"},
	{field: "event.category", col: "event_category"},
	{field: "http.response.status_code", col: "http_status", integer: true},
	{field: "url.path", col: "url_path"},
}

func promotedByField(name string) (promotedField, bool) {
	for _, p := range promoted {
		if p.field == name {
			return p, true
		}
	}
	return promotedField{}, false
}

// eventColumns maps query fields to SQL for query.ToSQL. Field names reach
// here only after query.ValidFieldName (letters, digits, '_', '@', '.', '-'),
// so embedding them in the JSON path literal is safe.
func eventColumns(field string) (string, bool) {
	switch field {
	case query.TextField:
		// message holds raw when the event has no message (message_from_raw).
		return "message", false
	case "host.name":
		return "host", false
	case "input":
		return "input", false
	case "parse_error":
		return "parse_error", false
	}
	if expr, ok := packedColumn(field); ok {
		return expr, false
	}
	if name, ok := strings.CutSuffix(field, query.IPSuffix); ok {
		if p, ok := promotedByField(name); ok && p.ipKey != "" {
			return p.ipKey, false
		}
		return "", false
	}
	if p, ok := promotedByField(field); ok {
		return p.col, p.integer
	}
	if !query.ValidFieldName(field) {
		// Unreachable through query.Parse; a NULL never matches.
		return "CAST(NULL AS VARCHAR)", false
	}
	return `json_extract_string(fields, '$."` + field + `"')`, false
}

// validUTF8 replaces invalid bytes: DuckDB rejects invalid UTF-8 in VARCHAR,
// and one bad line must not fail its whole batch.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// EventCount is the number of stored events.
func (s *Store) EventCount(ctx context.Context) (int64, error) {
	if err := s.syncEvents(ctx); err != nil {
		return 0, fmt.Errorf("eventstore: event count: %w", err)
	}
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM events`).Scan(&n); err != nil {
		return 0, fmt.Errorf("eventstore: event count: %w", err)
	}
	if s.ev.files != nil {
		_, rows, _, _, _, _ := s.ev.files.totals()
		n += rows
	}
	return n, nil
}

// selectEvents is the column list scanEvent reads, up to the relation
// (eventsFrom) that follows it.
const selectEvents = `SELECT id, ts, received, host, input, message, source_ip, source_port, destination_ip,
	user_name, process_name, event_action, event_outcome, event_category, http_status, url_path,
	fields, raw, parse_error, message_from_raw, packed FROM `

type rowScanner interface{ Scan(dest ...any) error }

// scanEvent reads one row of selectEvents back into an event. Values in the
// JSON win over columns: they are the originals where the column holds a
// converted copy.
func scanEvent(r rowScanner) (event.Event, error) {
	var (
		e                        event.Event
		host, input, msg, fields sql.NullString
		raw, perr                sql.NullString
		fromRaw                  sql.NullBool
		packed                   sql.NullInt32
		cols                     [len(promoted)]any
		strs                     [len(promoted)]sql.NullString
		ints                     [len(promoted)]sql.NullInt32
		dest                     = []any{&e.ID, &e.Time, &e.Received, &host, &input, &msg}
	)
	for i, p := range promoted {
		if p.integer {
			cols[i] = &ints[i]
		} else {
			cols[i] = &strs[i]
		}
	}
	dest = append(dest, cols[:]...)
	dest = append(dest, &fields, &raw, &perr, &fromRaw, &packed)
	if err := r.Scan(dest...); err != nil {
		return e, err
	}
	e.Time, e.Received = e.Time.UTC(), e.Received.UTC()
	e.Host, e.Input, e.Raw, e.ParseError = host.String, input.String, raw.String, perr.String
	if fields.Valid {
		if err := json.Unmarshal([]byte(fields.String), &e.Fields); err != nil {
			return e, fmt.Errorf("event %d: fields: %w", e.ID, err)
		}
	}
	set := func(k string, v any) {
		if _, ok := e.Fields[k]; !ok {
			e.Set(k, v)
		}
	}
	if msg.Valid && !fromRaw.Bool {
		set("message", msg.String)
	}
	for i, p := range promoted {
		switch {
		case p.integer && ints[i].Valid:
			set(p.field, float64(ints[i].Int32))
		case !p.integer && strs[i].Valid:
			set(p.field, strs[i].String)
		}
	}
	restorePacked(&e, packed.Int32, raw.String, msg.String)
	return e, nil
}

// EventQuery selects events for SearchEvents and ExportEvents.
type EventQuery struct {
	// Where is the parsed query; nil matches everything.
	Where query.Node
	// From and To bound the event time to [From, To); zero means unbounded.
	From, To time.Time
	// Limit caps the events returned: 0 means DefaultLimit, at most
	// MaxLimit. ExportEvents treats 0 as "no limit".
	Limit int
	// Cursor continues a search where the previous page ended (the next
	// value SearchEvents returned); "" starts at the newest event.
	Cursor string
	// NoWait searches what DuckDB holds now. Without it a search first
	// waits until every event acknowledged before it is loaded, however
	// long the loader's backlog; AwaitSearchable bounds that wait and
	// counts what is left.
	NoWait bool
}

// cursor is the keyset position after which a page continues: the (ts, id)
// of the last event returned. Events are ordered by (ts, id) descending.
type cursor struct {
	ts int64 // µs
	id uint64
}

func (c cursor) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("v1:%d:%d", c.ts, c.id)))
}

func decodeCursor(s string) (cursor, error) {
	bad := &check.FieldError{Field: "cursor", Reason: "is not a cursor returned by a search"}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, bad
	}
	parts := strings.Split(string(b), ":")
	if len(parts) != 3 || parts[0] != "v1" {
		return cursor{}, bad
	}
	ts, err1 := strconv.ParseInt(parts[1], 10, 64)
	id, err2 := strconv.ParseUint(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return cursor{}, bad
	}
	return cursor{ts: ts, id: id}, nil
}

// filter builds the WHERE clause shared by searches, stats and exports.
func filter(where query.Node, from, to time.Time, cur string) (string, []any, error) {
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return "", nil, &check.FieldError{Field: "to", Reason: "must be after from"}
	}
	var (
		conds []string
		args  []any
	)
	if !from.IsZero() {
		conds = append(conds, "ts >= make_timestamp(?)")
		args = append(args, from.UnixMicro())
	}
	if !to.IsZero() {
		conds = append(conds, "ts < make_timestamp(?)")
		args = append(args, to.UnixMicro())
	}
	if cur != "" {
		c, err := decodeCursor(cur)
		if err != nil {
			return "", nil, err
		}
		conds = append(conds, "(ts < make_timestamp(?) OR (ts = make_timestamp(?) AND id < ?))")
		args = append(args, c.ts, c.ts, c.id)
	}
	if where != nil {
		if _, all := where.(query.All); !all {
			w, wargs, err := eventWhere(where)
			if err != nil {
				return "", nil, &check.FieldError{Field: "q", Reason: err.Error()}
			}
			conds = append(conds, w)
			args = append(args, wargs...)
		}
	}
	if len(conds) == 0 {
		return "", nil, nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args, nil
}

// SearchEvents returns the events matching q, newest first (by event time,
// then id), and the cursor of the next page ("" when this page is the last).
func (s *Store) SearchEvents(ctx context.Context, q EventQuery) ([]event.Event, string, error) {
	limit, err := normLimit("limit", q.Limit)
	if err != nil {
		return nil, "", fmt.Errorf("eventstore: search events: %w", err)
	}
	where, args, err := filter(q.Where, q.From, q.To, q.Cursor)
	if err != nil {
		return nil, "", fmt.Errorf("eventstore: search events: %w", err)
	}
	upper := q.To
	if q.Cursor != "" {
		c, _ := decodeCursor(q.Cursor) // filter checked it
		if ct := time.UnixMicro(c.ts); upper.IsZero() || ct.Before(upper) {
			upper = ct
		}
	}
	if !q.NoWait {
		if err := s.syncEvents(ctx); err != nil {
			return nil, "", fmt.Errorf("eventstore: search events: %w", err)
		}
	}
	evs, err := s.newestFirst(ctx, where, args, q.From, upper, limit)
	if err != nil {
		return nil, "", fmt.Errorf("eventstore: search events: %w", err)
	}
	next := ""
	if len(evs) == limit {
		last := evs[len(evs)-1]
		next = cursor{ts: last.Time.UnixMicro(), id: last.ID}.encode()
	}
	return evs, next, nil
}

// queryEvents reads the events of selectEvents, over the events in sc,
// followed by tail (a WHERE clause and more) with args.
func (s *Store) queryEvents(ctx context.Context, sc fileScope, tail string, args ...any) ([]event.Event, error) {
	if err := s.syncEvents(ctx); err != nil {
		return nil, err
	}
	return s.queryLoaded(ctx, sc, tail, args...)
}

// queryLoaded is queryEvents over what is loaded, without waiting for the
// loader.
func (s *Store) queryLoaded(ctx context.Context, sc fileScope, tail string, args ...any) ([]event.Event, error) {
	rel, release := s.eventsFrom(sc)
	defer release()
	rows, err := s.db.QueryContext(ctx, selectEvents+rel+tail, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []event.Event{}
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// EventsByID returns the stored events with the given ids (at most
// MaxLimit), in the order asked; ids that do not exist are left out.
func (s *Store) EventsByID(ctx context.Context, ids []uint64) ([]event.Event, error) {
	if len(ids) > MaxLimit {
		return nil, fmt.Errorf("eventstore: events by id: %w", &check.FieldError{Field: "ids", Reason: fmt.Sprintf("at most %d at a time", MaxLimit)})
	}
	if len(ids) == 0 {
		return []event.Event{}, nil
	}
	ph := strings.Repeat("?,", len(ids))
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	sc := allFiles
	sc.ids = ids
	evs, err := s.queryEvents(ctx, sc, " WHERE id IN ("+ph[:len(ph)-1]+")", args...)
	if err != nil {
		return nil, fmt.Errorf("eventstore: events by id: %w", err)
	}
	byID := make(map[uint64]event.Event, len(evs))
	for _, e := range evs {
		byID[e.ID] = e
	}
	out := make([]event.Event, 0, len(evs))
	for _, id := range ids {
		if e, ok := byID[id]; ok {
			out = append(out, e)
		}
	}
	return out, nil
}

// Entities that EntityEvents pivots on.
const (
	EntityIP   = "ip"
	EntityUser = "user"
	EntityHost = "host"
)

// EntityQuery selects the events that concern an entity.
type EntityQuery struct {
	// Entity is EntityIP, EntityUser or EntityHost; Value its exact value.
	Entity, Value string
	// From and To bound the event time to [From, To).
	From, To time.Time
	// Limit caps the events returned (0 means DefaultLimit, at most
	// MaxLimit).
	Limit int
	// NoWait reads what DuckDB holds now (EventQuery.NoWait).
	NoWait bool
}

// EntityEvents returns up to q.Limit events in [q.From, q.To) that concern
// an entity, newest first: an ip as source.ip or destination.ip, a user as
// user.name, a host as host.name (exact matches).
func (s *Store) EntityEvents(ctx context.Context, q EntityQuery) ([]event.Event, error) {
	entity, value, from, to := q.Entity, q.Value, q.From, q.To
	var cond string
	var args []any
	switch entity {
	case EntityIP:
		// The hashes narrow the scan to a few rows; the text keeps it exact
		// (see ipHash).
		h := ipHash(value)
		cond, args = "(source_ip_hash = ? OR destination_ip_hash = ?) AND (source_ip = ? OR destination_ip = ?)", []any{h, h, value, value}
	case EntityUser:
		cond, args = "user_name = ?", []any{value}
	case EntityHost:
		cond, args = "host = ?", []any{value}
	default:
		return nil, fmt.Errorf("eventstore: entity events: %w", &check.FieldError{Field: "entity", Reason: fmt.Sprintf("%q is not one of ip, user, host", entity)})
	}
	if value == "" {
		return nil, fmt.Errorf("eventstore: entity events: %w", &check.FieldError{Field: "value", Reason: "is required"})
	}
	if err := checkRange(from, to); err != nil {
		return nil, fmt.Errorf("eventstore: entity events: %w", err)
	}
	limit, err := normLimit("limit", q.Limit)
	if err != nil {
		return nil, fmt.Errorf("eventstore: entity events: %w", err)
	}
	if !q.NoWait {
		if err := s.syncEvents(ctx); err != nil {
			return nil, fmt.Errorf("eventstore: entity events: %w", err)
		}
	}
	args = append(args, from.UnixMicro(), to.UnixMicro(), limit)
	evs, err := s.queryLoaded(ctx, scopeTime(from, to), " WHERE "+cond+
		" AND ts >= make_timestamp(?) AND ts < make_timestamp(?) ORDER BY ts DESC, id DESC LIMIT ?", args...)
	if err != nil {
		return nil, fmt.Errorf("eventstore: entity events: %w", err)
	}
	return evs, nil
}
