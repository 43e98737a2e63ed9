package eventstore

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/event"
	"github.com/nocsoc/nocsoc/internal/query"
)

// sampleEvents is a small mixed log: sshd, sudo, web, a Windows event and a
// line that did not parse. Event i is at t0 + i minutes.
func sampleEvents() []event.Event {
	mk := func(i int, host, input, raw string, fields map[string]any) event.Event {
		return event.Event{Time: at(time.Duration(i) * time.Minute), Received: at(time.Duration(i)*time.Minute + time.Second),
			Host: host, Input: input, Raw: raw, Fields: fields}
	}
	evs := []event.Event{
		mk(0, "web1", "syslog-tcp", "sshd[1]: Failed password for root from 203.0.113.7 port 4242 ssh2", map[string]any{
			"message": "Failed password for root from 203.0.113.7 port 4242 ssh2", "process.name": "sshd", "process.pid": float64(1),
			"source.ip": "203.0.113.7", "source.port": float64(4242), "user.name": "root", "event.outcome": "failure",
			"event.action": "ssh_login", "event.category": "authentication"}),
		mk(1, "web1", "syslog-tcp", "sshd[2]: Accepted publickey for alice from 10.1.2.3 port 5000 ssh2", map[string]any{
			"message": "Accepted publickey for alice from 10.1.2.3 port 5000 ssh2", "process.name": "sshd",
			"source.ip": "10.1.2.3", "source.port": float64(5000), "user.name": "alice", "event.outcome": "success"}),
		mk(2, "db1", "syslog-udp", "sudo: bob : user NOT in sudoers ; COMMAND=/bin/sh", map[string]any{
			"message": "bob : user NOT in sudoers ; COMMAND=/bin/sh", "process.name": "sudo", "user.name": "bob",
			"event.outcome": "failure", "process.command_line": "/bin/sh"}),
		mk(3, "web1", "file", `192.168.1.20 - - "GET /admin HTTP/1.1" 404 12`, map[string]any{
			"message": `GET /admin HTTP/1.1`, "source.ip": "192.168.1.20", "url.path": "/admin",
			"http.response.status_code": float64(404), "user_agent.original": "curl/8.0"}),
		mk(4, "web1", "file", `192.168.1.21 - - "GET / HTTP/1.1" 200 99`, map[string]any{
			"message": `GET / HTTP/1.1`, "source.ip": "192.168.1.21", "url.path": "/",
			"http.response.status_code": float64(200)}),
		mk(5, "dc1", "http", `{"Event":{}}`, map[string]any{
			"EventID": float64(4625), "TargetUserName": "ADMIN$", "source.ip": "2001:db8::5", "destination.ip": "203.0.113.7",
			"source.port": "ssh", "elevated": true, "note": nil}),
		{Time: at(6 * time.Minute), Input: "syslog-tcp", Raw: "\x00garbage \xff line Failed", ParseError: "not syslog"},
	}
	return evs
}

func appendSample(t *testing.T, s *Store) []event.Event {
	t.Helper()
	evs := sampleEvents()
	ids, err := s.AppendEvents(context.Background(), evs)
	if err != nil {
		t.Fatalf("AppendEvents: %v", err)
	}
	for i, id := range ids {
		if id != uint64(i+1) || evs[i].ID != id {
			t.Fatalf("ids = %v, want 1..%d and set on the events", ids, len(evs))
		}
	}
	return evs
}

func TestAppendEventsRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.duckdb")
	s := openTest(t, Options{Path: path})
	evs := appendSample(t, s)
	got, err := s.EventsByID(ctx, []uint64{7, 1, 2, 3, 4, 5, 6, 99})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 7 || got[0].ID != 7 || got[1].ID != 1 {
		t.Fatalf("EventsByID returned ids %v", eventIDs(got))
	}
	for _, g := range got[1:] {
		want := evs[g.ID-1]
		// JSON null fields survive as nil.
		if !reflect.DeepEqual(g, want) {
			t.Errorf("event %d round trip:\n got %#v\nwant %#v", g.ID, g, want)
		}
	}
	bad := got[0]
	if bad.ParseError != "not syslog" || bad.Raw != "\x00garbage \uFFFD line Failed" || bad.Fields != nil {
		t.Errorf("unparsed event stored as %#v", bad)
	}
	// Ids continue after a reopen.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, Options{Path: path})
	ids, err := s.AppendEvents(ctx, sampleEvents()[:2])
	if err != nil || !slices.Equal(ids, []uint64{8, 9}) {
		t.Fatalf("after reopen ids = %v, %v; want [8 9]", ids, err)
	}
	if n, err := s.EventCount(ctx); err != nil || n != 9 {
		t.Errorf("EventCount = %d, %v; want 9", n, err)
	}
}

func TestAppendEventsRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	tests := []struct {
		name  string
		evs   []event.Event
		field string
	}{
		{"no time", []event.Event{{Time: t0, Raw: "ok"}, {Raw: "x"}}, "events[1].Time"},
		{"NaN field", []event.Event{{Time: t0, Fields: map[string]any{"x": float64(0) / zero()}}}, `events[0].Fields["x"]`},
		{"unencodable field", []event.Event{{Time: t0, Fields: map[string]any{"x": make(chan int)}}}, "events[0].Fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.AppendEvents(ctx, tt.evs)
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("err = %v, want one naming %s", err, tt.field)
			}
			if n, _ := s.EventCount(ctx); n != 0 {
				t.Errorf("%d events stored after a rejected batch", n)
			}
		})
	}
}

func zero() float64 { return 0 }

func eventIDs(evs []event.Event) []uint64 {
	ids := make([]uint64, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	return ids
}

func TestSearchEventsOperators(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	appendSample(t, s)
	tests := []struct {
		q    string
		want []uint64 // newest first
	}{
		{"", []uint64{7, 6, 5, 4, 3, 2, 1}},
		{"source.ip:203.0.113.7", []uint64{1}},
		{"source.ip:10.0.0.0/8", []uint64{2}},
		{"source.ip:192.168.1.0/24", []uint64{5, 4}},
		{"source.ip:192.168.1.20/32", []uint64{4}},
		{"source.ip:2001:db8::/32", []uint64{6}},
		{"source.ip:0.0.0.0/0", []uint64{5, 4, 2, 1}},
		{"source.ip!=192.168.1.0/24", []uint64{7, 6, 3, 2, 1}},
		{"destination.ip:203.0.113.0/24", []uint64{6}},
		{"event.outcome:failure", []uint64{3, 1}},
		{"event.outcome:FAILURE", nil},
		{"user.name:al*", []uint64{2}},
		{"user.name:?ob", []uint64{3}},
		{`"Failed password"`, []uint64{1}},
		{`"failed PASSWORD"`, []uint64{1}},
		{"failed", []uint64{7, 1}}, // the unparsed line is searched through raw
		{"sudoers COMMAND", []uint64{3}},
		{"fail* OR accepted", []uint64{7, 2, 1}},
		{"process.name:sshd AND NOT user.name:root", []uint64{2}},
		{"sshd", nil}, // bare words search the message, not other fields
		{"-user.name:root", []uint64{7, 6, 5, 4, 3, 2}},
		{"(user.name:root OR user.name:bob) event.outcome:failure", []uint64{3, 1}},
		{"http.response.status_code>=400", []uint64{4}},
		{"http.response.status_code:<300", []uint64{5}},
		{"http.response.status_code:404", []uint64{4}},
		{"http.response.status_code:4*", []uint64{4}},
		{"source.port>4242", []uint64{2}},
		{"source.port:ssh", nil}, // kept in the JSON only: not a port number
		{"EventID:4625", []uint64{6}},
		{"EventID>=4000", []uint64{6}},
		{"process.pid<2", []uint64{1}},
		{`TargetUserName:"ADMIN$"`, []uint64{6}},
		{"elevated:true", []uint64{6}},
		{"_exists_:url.path", []uint64{5, 4}},
		{"_exists_:process.command_line", []uint64{3}},
		{"host.name:db1", []uint64{3}},
		{"input:file", []uint64{5, 4}},
		{"url.path:\\/admin", []uint64{4}},
		{"user_agent.original:curl*", []uint64{4}},
		{"user.name:\"' OR 1=1 --\"", nil},
		{`"100%"`, nil},
		{"parse_error:*", []uint64{7}},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			n, err := query.Parse(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			got, next, err := s.SearchEvents(ctx, EventQuery{Where: n})
			if err != nil {
				t.Fatal(err)
			}
			if ids := eventIDs(got); !slices.Equal(ids, tt.want) && !(len(ids) == 0 && len(tt.want) == 0) {
				t.Errorf("ids = %v, want %v", ids, tt.want)
			}
			if next != "" {
				t.Errorf("next = %q on a short page", next)
			}
		})
	}
}

func TestSearchEventsTimeRangeAndErrors(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	appendSample(t, s)
	got, _, err := s.SearchEvents(ctx, EventQuery{From: at(2 * time.Minute), To: at(4 * time.Minute)})
	if err != nil || !slices.Equal(eventIDs(got), []uint64{4, 3}) {
		t.Errorf("range [2m,4m) = %v, %v; want [4 3]", eventIDs(got), err)
	}
	for _, tt := range []struct {
		q     EventQuery
		field string
	}{
		{EventQuery{From: at(time.Hour), To: at(0)}, "to"},
		{EventQuery{Limit: -1}, "limit"},
		{EventQuery{Limit: MaxLimit + 1}, "limit"},
		{EventQuery{Cursor: "bogus!"}, "cursor"},
		{EventQuery{Where: query.Field{Name: "x'y", Op: ":", Value: "v"}}, "q"},
	} {
		_, _, err := s.SearchEvents(ctx, tt.q)
		var fe *check.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("SearchEvents(%+v) err = %v, want a FieldError on %s", tt.q, err, tt.field)
		}
	}
}

func TestSearchEventsCursorPaging(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	// 250 events, many sharing a timestamp, so paging must break ties by id.
	evs := make([]event.Event, 250)
	for i := range evs {
		evs[i] = event.Event{Time: at(time.Duration(i/7) * time.Second), Raw: fmt.Sprint("line ", i),
			Fields: map[string]any{"message": fmt.Sprint("line ", i)}}
	}
	if _, err := s.AppendEvents(ctx, evs[:100]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendEvents(ctx, evs[100:]); err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	var order []uint64
	cur := ""
	for pages := 0; ; pages++ {
		if pages > 20 {
			t.Fatal("paging does not end")
		}
		page, next, err := s.SearchEvents(ctx, EventQuery{Where: query.Text{Value: "line"}, Limit: 33, Cursor: cur})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			if seen[e.ID] {
				t.Fatalf("event %d returned twice", e.ID)
			}
			seen[e.ID] = true
			order = append(order, e.ID)
		}
		if next == "" {
			break
		}
		cur = next
	}
	if len(seen) != 250 {
		t.Errorf("paging returned %d distinct events, want 250", len(seen))
	}
	for i := 1; i < len(order); i++ {
		a, b := evs[order[i-1]-1], evs[order[i]-1]
		if b.Time.After(a.Time) || (b.Time.Equal(a.Time) && order[i] > order[i-1]) {
			t.Fatalf("not newest first at %d: %d then %d", i, order[i-1], order[i])
		}
	}
}

func TestEventStats(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	appendSample(t, s)
	all := query.All{}
	tests := []struct {
		name string
		q    StatsQuery
		want []Bucket
	}{
		{"top source.ip", StatsQuery{Where: all, By: "source.ip", Limit: 2}, []Bucket{
			{Key: "10.1.2.3", Count: 1}, {Key: "192.168.1.20", Count: 1}}},
		{"top host", StatsQuery{By: "host.name"}, []Bucket{
			{Key: "web1", Count: 4}, {Key: "db1", Count: 1}, {Key: "dc1", Count: 1}}},
		{"top status (numeric column)", StatsQuery{By: "http.response.status_code"}, []Bucket{
			{Key: "200", Count: 1}, {Key: "404", Count: 1}}},
		{"top json field with filter", StatsQuery{Where: mustParse(t, "event.outcome:failure"), By: "user.name"}, []Bucket{
			{Key: "bob", Count: 1}, {Key: "root", Count: 1}}},
		{"histogram filled", StatsQuery{From: at(-2 * time.Minute), To: at(6 * time.Minute), Interval: 2 * time.Minute}, []Bucket{
			{Time: at(-2 * time.Minute)}, {Time: at(0), Count: 2}, {Time: at(2 * time.Minute), Count: 2}, {Time: at(4 * time.Minute), Count: 2}}},
		{"histogram open", StatsQuery{Where: mustParse(t, "host.name:web1"), Interval: 3 * time.Minute}, []Bucket{
			{Time: at(0), Count: 2}, {Time: at(3 * time.Minute), Count: 2}}},
		{"by and interval", StatsQuery{By: "host.name", Interval: 3 * time.Minute, Limit: 2}, []Bucket{
			{Key: "db1", Time: at(0), Count: 1}, {Key: "web1", Time: at(0), Count: 2}, {Key: "web1", Time: at(3 * time.Minute), Count: 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.EventStats(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
	for _, q := range []StatsQuery{{}, {By: "a b"}, {Interval: -time.Second}, {By: "x", Limit: -1},
		{From: at(0), To: at(24 * time.Hour), Interval: time.Millisecond}} {
		var fe *check.FieldError
		if _, err := s.EventStats(ctx, q); !errors.As(err, &fe) {
			t.Errorf("EventStats(%+v) err = %v, want a FieldError", q, err)
		}
	}
}

func mustParse(t *testing.T, q string) query.Node {
	t.Helper()
	n, err := query.Parse(q)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestExportEvents(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	evs := appendSample(t, s)
	var buf bytes.Buffer
	n, err := s.ExportEvents(ctx, EventQuery{}, &buf, FormatNDJSON)
	if err != nil || n != 7 {
		t.Fatalf("export ndjson = %d, %v", n, err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 7 {
		t.Fatalf("%d lines", len(lines))
	}
	var first event.Event
	if err := json.Unmarshal([]byte(lines[6]), &first); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(first, evs[0]) {
		t.Errorf("ndjson last line = %#v, want %#v", first, evs[0])
	}

	buf.Reset()
	n, err = s.ExportEvents(ctx, EventQuery{Where: mustParse(t, "source.ip:192.168.1.0/24"), Limit: 1}, &buf, FormatCSV)
	if err != nil || n != 1 {
		t.Fatalf("export csv = %d, %v", n, err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{csvColumns, {"5", "2025-03-01T12:04:00Z", "2025-03-01T12:04:01Z", "web1", "file", "GET / HTTP/1.1",
		"192.168.1.21", "", "", "", "", "", "", "", "200", "/", "", `192.168.1.21 - - "GET / HTTP/1.1" 200 99`, ""}}
	if !reflect.DeepEqual(recs, want) {
		t.Errorf("csv =\n%q\nwant\n%q", recs, want)
	}

	buf.Reset()
	if _, err := s.ExportEvents(ctx, EventQuery{Where: mustParse(t, "EventID:4625")}, &buf, FormatCSV); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"{""EventID"":4625,""TargetUserName"":""ADMIN$"",""elevated"":true,""note"":null}"`) {
		t.Errorf("csv fields column missing the other fields:\n%s", buf.String())
	}
	if _, err := s.ExportEvents(ctx, EventQuery{}, &buf, "xml"); err == nil {
		t.Error("format xml accepted")
	}
}

func TestRetention(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	appendSample(t, s)
	now := at(10 * time.Minute)

	p, err := s.PlanRetention(ctx, Retention{MaxAge: time.Hour}, now)
	if err != nil || p.Rows != 0 || !p.DeleteBefore.IsZero() {
		t.Fatalf("nothing old: plan %+v, %v", p, err)
	}
	if n, err := s.ApplyRetention(ctx, p); err != nil || n != 0 {
		t.Fatalf("empty plan applied: %d, %v", n, err)
	}

	p, err = s.PlanRetention(ctx, Retention{MaxAge: 7*time.Minute + 30*time.Second}, now)
	if err != nil {
		t.Fatal(err)
	}
	if p.Rows != 3 || !p.DeleteBefore.Equal(at(2*time.Minute+30*time.Second)) || p.UpToID != 7 || p.Reason == "" {
		t.Fatalf("age plan = %+v", p)
	}
	// An old event that arrives after planning is not in the plan.
	if _, err := s.AppendEvents(ctx, []event.Event{{Time: at(-time.Hour), Raw: "late"}}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.EventCount(ctx); err != nil || n != 8 {
		t.Fatal(n, err)
	}
	n, err := s.ApplyRetention(ctx, p)
	if err != nil || n != p.Rows {
		t.Fatalf("applied %d, %v; planned %d", n, err, p.Rows)
	}
	left, _, err := s.SearchEvents(ctx, EventQuery{})
	if err != nil || !slices.Equal(eventIDs(left), []uint64{7, 6, 5, 4, 8}) {
		t.Fatalf("left %v, %v", eventIDs(left), err)
	}

	// Size: a limit far below the file deletes everything up to the plan.
	p, err = s.PlanRetention(ctx, Retention{MaxBytes: 1}, now)
	if err != nil || p.Rows != 5 || p.Bytes <= 0 {
		t.Fatalf("size plan = %+v, %v", p, err)
	}
	if n, err := s.ApplyRetention(ctx, p); err != nil || n != 5 {
		t.Fatalf("applied %d, %v", n, err)
	}
	if _, err := s.PlanRetention(ctx, Retention{MaxAge: -1}, now); err == nil {
		t.Error("negative max age accepted")
	}
}

func TestRetentionSizeKeepsNewest(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	evs := make([]event.Event, 20000)
	for i := range evs {
		evs[i] = event.Event{Time: at(time.Duration(i) * time.Second), Raw: strings.Repeat(fmt.Sprint(i), 20)}
	}
	if _, err := s.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `CHECKPOINT`); err != nil {
		t.Fatal(err)
	}
	if err := s.syncEvents(ctx); err != nil {
		t.Fatal(err)
	}
	used, err := s.usedBytes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The excess is half the bytes rounded down (used/2 would leave the
	// odd byte in the excess, and an excess of just over half the rows).
	p, err := s.PlanRetention(ctx, Retention{MaxBytes: used - used/2}, at(0))
	if err != nil {
		t.Fatal(err)
	}
	// About half, never more than the excess, always the oldest.
	if p.Rows < 9000 || p.Rows > 10000 {
		t.Errorf("size plan for half the bytes deletes %d of 20000 events", p.Rows)
	}
	if want := at(time.Duration(p.Rows) * time.Second); !p.DeleteBefore.Equal(want) {
		t.Errorf("DeleteBefore = %s, want %s (the oldest go first)", p.DeleteBefore, want)
	}
}

func TestEntityEvents(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	appendSample(t, s)
	from, to := at(-time.Hour), at(time.Hour)
	tests := []struct {
		entity, value string
		want          []uint64
	}{
		{"ip", "203.0.113.7", []uint64{6, 1}}, // as source and as destination
		{"user", "bob", []uint64{3}},
		{"host", "web1", []uint64{5, 4, 2, 1}},
		{"host", "nope", nil},
	}
	for _, tt := range tests {
		got, err := s.EntityEvents(ctx, EntityQuery{Entity: tt.entity, Value: tt.value, From: from, To: to})
		if err != nil {
			t.Fatal(err)
		}
		if ids := eventIDs(got); !slices.Equal(ids, tt.want) && len(ids)+len(tt.want) > 0 {
			t.Errorf("EntityEvents(%s, %s) = %v, want %v", tt.entity, tt.value, ids, tt.want)
		}
	}
	got, err := s.EntityEvents(ctx, EntityQuery{Entity: "host", Value: "web1", From: at(time.Minute), To: at(4 * time.Minute)})
	if err != nil || !slices.Equal(eventIDs(got), []uint64{4, 2}) {
		t.Errorf("windowed pivot = %v, %v", eventIDs(got), err)
	}
	for _, bad := range [][2]string{{"mac", "x"}, {"ip", ""}} {
		if _, err := s.EntityEvents(ctx, EntityQuery{Entity: bad[0], Value: bad[1], From: from, To: to}); err == nil {
			t.Errorf("EntityEvents(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

// An EventBatch stores what AppendEvents stores: the rows it encoded as
// events were added, each event as it round-trips; a rejected batch writes
// nothing and names the event, and a second call (a retry) encodes afresh.
func TestEventBatch(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	evs := sampleEvents()
	b := s.NewEventBatch(len(evs))
	for i := range evs {
		b.Add(&evs[i])
	}
	ids, err := b.AppendUnpaced(ctx, evs)
	if err != nil {
		t.Fatalf("AppendUnpaced: %v", err)
	}
	if len(ids) != len(evs) || ids[0] != 1 || evs[len(evs)-1].ID != uint64(len(evs)) {
		t.Fatalf("ids = %v, want 1..%d set on the events", ids, len(evs))
	}
	got, err := s.EventsByID(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	want := sampleEvents()
	for i := range want {
		want[i].ID = ids[i]
	}
	// As AppendEvents does: invalid UTF-8 replaced, Received from the clock.
	want[6].Raw = "\x00garbage \uFFFD line Failed"
	want[6].Received = s.o.Now()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("batch round trip:\n got %#v\nwant %#v", got, want)
	}
	// A second call of the same batch (a retry) encodes the events again.
	again := sampleEvents()[:2]
	if ids, err := b.AppendUnpaced(ctx, again); err != nil || !slices.Equal(ids, []uint64{8, 9}) {
		t.Errorf("second AppendUnpaced = %v, %v; want [8 9]", ids, err)
	}

	// Rejected: the event without Time is named and nothing is written.
	bad := []event.Event{{Time: t0, Raw: "ok"}, {Raw: "no time"}, {Time: t0, Raw: "after"}}
	b = s.NewEventBatch(len(bad))
	for i := range bad {
		b.Add(&bad[i])
	}
	if _, err := b.AppendUnpaced(ctx, bad); err == nil || !strings.Contains(err.Error(), "events[1].Time") {
		t.Errorf("err = %v, want one naming events[1].Time", err)
	}
	if n, _ := s.EventCount(ctx); n != 9 {
		t.Errorf("EventCount = %d after a rejected batch, want 9", n)
	}
	// Events other than those added are encoded afresh.
	b = s.NewEventBatch(1)
	b.Add(&bad[0])
	if ids, err := b.AppendUnpaced(ctx, bad[:0:0]); err != nil || len(ids) != 0 {
		t.Errorf("AppendUnpaced of no events = %v, %v", ids, err)
	}
	if n, _ := s.EventCount(ctx); n != 9 {
		t.Errorf("EventCount = %d, want 9", n)
	}
}
