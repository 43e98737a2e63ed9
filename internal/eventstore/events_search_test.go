package eventstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/nocsoc/nocsoc/internal/event"
)

// The hand-written encoder must produce what encoding/json produces for the
// same map (sorted keys, HTML escaping, ES6 floats, U+FFFD for bad UTF-8).
func TestFieldsJSONMatchesEncodingJSON(t *testing.T) {
	tests := []map[string]any{
		{"a": "plain", "b": float64(1), "c": true, "d": nil, "f": false},
		{"html": `<script>&"x"\`, "ctl": "\x00\x01\t\n\r\b\f\x1f\x7f", "ls": "a\u2028b\u2029c"},
		{"bad": "ok \xff\xfe end", "é<>": "ünïcödé 日本", "trunc": "\xe6\x97"},
		{"small": 1e-7, "big": 1e21, "neg": -0.000001, "frac": 3.25, "int": float64(-42), "e": 1.5e300, "z": float64(0), "e9": 1e-9},
		{"nested": map[string]any{"x": []any{float64(1), "y<"}}, "list": []any{}},
	}
	for i, fields := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			var rb rowBuilder
			row := make([]driver.Value, eventCols)
			if err := rb.build(row, &event.Event{Time: t0, Fields: fields}, t0); err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(fields)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := row[18].(string); got != string(want) {
				t.Errorf("fields JSON\n got %s\nwant %s", got, want)
			}
		})
	}
}

// Concurrent callers share commits; every call still gets its own
// consecutive ids, in order, and every event is stored once.
func TestAppendEventsConcurrent(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	const callers, per = 8, 50
	got := make([][]uint64, callers)
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			evs := make([]event.Event, per)
			for i := range evs {
				evs[i] = event.Event{Time: at(time.Duration(c*per+i) * time.Second), Raw: "x",
					Fields: map[string]any{"source.ip": fmt.Sprintf("10.0.%d.%d", c, i)}}
			}
			ids, err := s.AppendEvents(ctx, evs)
			if err != nil {
				t.Error(err)
				return
			}
			got[c] = ids
		})
	}
	wg.Wait()
	var all []uint64
	for c, ids := range got {
		if len(ids) != per {
			t.Fatalf("caller %d got %d ids", c, len(ids))
		}
		for i := 1; i < len(ids); i++ {
			if ids[i] != ids[i-1]+1 {
				t.Errorf("caller %d ids not consecutive: %v", c, ids)
				break
			}
		}
		all = append(all, ids...)
	}
	slices.Sort(all)
	for i, id := range all {
		if id != uint64(i+1) {
			t.Fatalf("ids are not 1..%d: %v", callers*per, all)
		}
	}
	if n, err := s.EventCount(ctx); err != nil || n != callers*per {
		t.Errorf("EventCount = %d, %v; want %d", n, err, callers*per)
	}
	evs, _, err := s.SearchEvents(ctx, EventQuery{Where: mustParse(t, "source.ip:10.0.3.7")})
	if err != nil || len(evs) != 1 || evs[0].ID != got[3][7] {
		t.Errorf("search source.ip:10.0.3.7 = %v, %v; want event %d", eventIDs(evs), err, got[3][7])
	}
}

// A database written before migration 3 gets the searched text and the IP
// hashes filled in, and reads back exactly as before.
func TestMigrationSearchColumns(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.duckdb")
	connector, err := duckdb.NewConnector(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	if _, err := db.ExecContext(ctx, `CREATE TABLE schema_version (
		version    INTEGER NOT NULL,
		applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp
	)`); err != nil {
		t.Fatal(err)
	}
	for i, m := range migrations()[:2] {
		if err := applyMigration(ctx, db, i+1, m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO events (id, ts, received, input, message, source_ip, destination_ip, fields, raw) VALUES
		(1, TIMESTAMP '2025-01-01 00:00:00', TIMESTAMP '2025-01-01 00:00:00', 'file', NULL, '203.0.113.7', NULL, NULL, 'Raw Line without text'),
		(2, TIMESTAMP '2025-01-01 00:01:00', TIMESTAMP '2025-01-01 00:01:00', 'file', 'with message', NULL, '203.0.113.7', NULL, 'raw two')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s := openTest(t, Options{Path: path})
	tests := []struct {
		q    string
		want []uint64
	}{
		{`"line without"`, []uint64{1}},
		{`message`, []uint64{2}},
		{`"RAW two"`, nil},
		{`source.ip:203.0.113.7`, []uint64{1}},
		{`destination.ip:203.0.113.7`, []uint64{2}},
		{`source.ip!=203.0.113.7`, []uint64{2}},
	}
	for _, tt := range tests {
		evs, _, err := s.SearchEvents(ctx, EventQuery{Where: mustParse(t, tt.q)})
		if err != nil || !slices.Equal(eventIDs(evs), tt.want) && len(evs)+len(tt.want) > 0 {
			t.Errorf("%s: %v, %v; want %v", tt.q, eventIDs(evs), err, tt.want)
		}
	}
	evs, err := s.EventsByID(ctx, []uint64{1, 2})
	if err != nil || len(evs) != 2 {
		t.Fatalf("EventsByID = %v, %v", evs, err)
	}
	if _, ok := evs[0].Fields["message"]; ok {
		t.Errorf("event 1 has a message after migration: %v", evs[0].Fields)
	}
	if evs[1].Fields["message"] != "with message" {
		t.Errorf("event 2 fields = %v", evs[1].Fields)
	}
	ips, err := s.EntityEvents(ctx, EntityQuery{Entity: EntityIP, Value: "203.0.113.7", From: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC), Limit: 10})
	if err != nil || len(ips) != 2 {
		t.Errorf("EntityEvents = %v, %v; want both events", eventIDs(ips), err)
	}
	st, err := s.EventStats(ctx, StatsQuery{By: "message"})
	if err != nil || len(st) != 1 || st[0].Key != "with message" {
		t.Errorf("stats by message = %v, %v; want only the real message", st, err)
	}
}

// Searches look at the newest time windows first; the answer must be the
// same as one query over everything, whatever window the matches are in.
func TestSearchEventsWindows(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	ages := []time.Duration{0, 10 * time.Minute, time.Hour, 10 * time.Hour, 100 * time.Hour, 1000 * time.Hour, 1001 * time.Hour}
	var evs []event.Event
	for i, age := range ages {
		evs = append(evs, event.Event{Time: at(-age), Raw: "r", Fields: map[string]any{"message": fmt.Sprint("hit ", i)}},
			event.Event{Time: at(-age - time.Second), Raw: "r", Fields: map[string]any{"message": "miss"}})
	}
	if _, err := s.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	hits := func(ix ...int) []uint64 {
		var ids []uint64
		for _, i := range ix {
			ids = append(ids, uint64(2*i+1))
		}
		return ids
	}
	tests := []struct {
		name string
		q    EventQuery
		want []uint64
	}{
		{"newest two", EventQuery{Where: mustParse(t, "hit"), Limit: 2}, hits(0, 1)},
		{"four reach 10h", EventQuery{Where: mustParse(t, "hit"), Limit: 4}, hits(0, 1, 2, 3)},
		{"all", EventQuery{Where: mustParse(t, "hit"), Limit: 100}, hits(0, 1, 2, 3, 4, 5, 6)},
		{"to", EventQuery{Where: mustParse(t, "hit"), To: at(-50 * time.Hour), Limit: 2}, hits(4, 5)},
		{"from", EventQuery{Where: mustParse(t, "hit"), From: at(-20 * time.Hour), Limit: 10}, hits(0, 1, 2, 3)},
		{"none", EventQuery{Where: mustParse(t, `"no such"`), Limit: 2}, nil},
	}
	for _, tt := range tests {
		got, _, err := s.SearchEvents(ctx, tt.q)
		if err != nil || !slices.Equal(eventIDs(got), tt.want) && len(got)+len(tt.want) > 0 {
			t.Errorf("%s: %v, %v; want %v", tt.name, eventIDs(got), err, tt.want)
		}
	}
	// Paging one at a time walks every window in order.
	var paged []uint64
	q := EventQuery{Where: mustParse(t, "hit"), Limit: 1}
	for range 10 {
		got, next, err := s.SearchEvents(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, eventIDs(got)...)
		if next == "" {
			break
		}
		q.Cursor = next
	}
	if want := hits(0, 1, 2, 3, 4, 5, 6); !slices.Equal(paged, want) {
		t.Errorf("paged = %v, want %v", paged, want)
	}
	// Events appended later, older or newer than all, are found too.
	if _, err := s.AppendEvents(ctx, []event.Event{{Time: at(time.Hour), Raw: "r", Fields: map[string]any{"message": "hit new"}}}); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.SearchEvents(ctx, EventQuery{Where: mustParse(t, "hit"), Limit: 1})
	if err != nil || len(got) != 1 || got[0].ID != uint64(len(evs)+1) {
		t.Errorf("after append: %v, %v; want the new event", eventIDs(got), err)
	}
}
