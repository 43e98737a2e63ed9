package eventstore

import (
	"context"
	"database/sql/driver"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/event"
)

// packedEvents are syslog-shaped events whose derived values hold exactly
// (the first) or almost (the others: each differs from its derivation in
// one detail, so it must be stored spelt out).
func packedEvents() []event.Event {
	const hdr = "<4>1 2026-11-27T13:31:11.640Z web2 kernel 2855 - - "
	syslog := func(mod func(f map[string]any)) map[string]any {
		f := map[string]any{
			"message": "GET /x HTTP/1.1", "log.syslog.priority": float64(4),
			"log.syslog.severity.code": float64(4), "log.syslog.severity.name": "warning",
			"log.syslog.facility.code": float64(0), "log.syslog.facility.name": "kern",
			"log.syslog.procid": "2855", "process.pid": float64(2855), "input.name": "syslog-tcp",
			"url.path": "/x", "url.original": "/x", "process.name": "kernel",
		}
		if mod != nil {
			mod(f)
		}
		return f
	}
	mk := func(i int, raw string, f map[string]any) event.Event {
		return event.Event{Time: at(time.Duration(i) * time.Second), Received: at(time.Duration(i)*time.Second + time.Millisecond),
			Host: "web2", Input: "syslog-tcp", Raw: raw, Fields: f}
	}
	line := hdr + "GET /x HTTP/1.1"
	return []event.Event{
		mk(0, line, syslog(nil)),
		mk(1, line+" ", syslog(nil)), // raw does not end with the message
		mk(2, line, syslog(func(f map[string]any) { f["log.syslog.facility.name"] = "kernel" })),
		mk(3, line, syslog(func(f map[string]any) { f["log.syslog.severity.code"] = "4" })),
		mk(4, line, syslog(func(f map[string]any) { delete(f, "log.syslog.facility.code") })),
		mk(5, line, syslog(func(f map[string]any) { f["log.syslog.priority"] = float64(192) })),
		mk(6, line, syslog(func(f map[string]any) { f["log.syslog.procid"] = "02855" })),
		mk(7, line, syslog(func(f map[string]any) { f["process.pid"] = float64(2855.5) })),
		mk(8, line, syslog(func(f map[string]any) { f["input.name"] = "syslog-udp" })),
		mk(9, line, syslog(func(f map[string]any) { f["url.original"] = "/x?a=1" })),
		mk(10, line, syslog(func(f map[string]any) { f["url.path"] = float64(5); f["url.original"] = "5" })),
		mk(11, line, syslog(func(f map[string]any) { f["message"] = "" })),
		mk(12, "no message here", syslog(func(f map[string]any) { delete(f, "message") })),
		mk(13, line, syslog(func(f map[string]any) {
			f["log.syslog.priority"] = float64(191)
			f["log.syslog.severity.code"], f["log.syslog.severity.name"] = float64(7), "debug"
			f["log.syslog.facility.code"], f["log.syslog.facility.name"] = float64(23), "local7"
		})),
		{Time: at(14 * time.Second), Received: at(14 * time.Second), Input: "http", Raw: "x",
			Fields: map[string]any{"input.name": ""}}, // input.name "" and no input
	}
}

// TestPackedRoundTrip: every event reads back exactly as appended, and the
// derivations that hold were in fact stored derived.
func TestPackedRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	evs := packedEvents()
	ids, err := s.AppendEvents(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.EventsByID(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(evs) {
		t.Fatalf("%d events read back, want %d", len(got), len(evs))
	}
	for _, g := range got {
		if want := evs[g.ID-1]; !reflect.DeepEqual(g, want) {
			t.Errorf("event %d round trip:\n got %#v\nwant %#v", g.ID, g, want)
		}
	}
	all := int32(packRawSuffix | packSyslogPri | packProcID | packInputName | packURLOriginal)
	wantBits := map[uint64]int32{
		1:  all,
		2:  all &^ packRawSuffix,
		3:  all &^ packSyslogPri,
		4:  all &^ packSyslogPri,
		5:  all &^ packSyslogPri,
		6:  all &^ packSyslogPri,
		7:  all &^ packProcID,
		8:  all &^ packProcID,
		9:  all &^ packInputName,
		10: all &^ packURLOriginal,
		11: all &^ packURLOriginal,
		12: all &^ packRawSuffix,
		13: (all &^ packRawSuffix) | packRawIsMessage,
		14: all,
		15: packRawIsMessage,
	}
	rel, release := s.eventsFrom(allFiles)
	defer release()
	rows, err := s.db.QueryContext(ctx, `SELECT id, packed, raw, fields FROM `+rel+` ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		seen++
		var (
			id      uint64
			bits    int32
			raw     *string
			jsonTxt string
		)
		if err := rows.Scan(&id, &bits, &raw, &jsonTxt); err != nil {
			t.Fatal(err)
		}
		if bits != wantBits[id] {
			t.Errorf("event %d: packed = %b, want %b", id, bits, wantBits[id])
		}
		if id == 1 {
			if raw == nil || *raw != "<4>1 2026-11-27T13:31:11.640Z web2 kernel 2855 - - " {
				t.Errorf("event 1: raw column = %v, want the header only", raw)
			}
			for _, k := range []string{"severity", "facility", "procid", "input.name", "url.original"} {
				if strings.Contains(jsonTxt, k) {
					t.Errorf("event 1: fields %s still spell out %q", jsonTxt, k)
				}
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if seen != len(evs) {
		t.Errorf("%d stored rows read, want %d", seen, len(evs))
	}
}

// TestPackedQueries: a query on a derived value finds packed and spelt-out
// events alike, and counts them alike.
func TestPackedQueries(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	evs := packedEvents()
	if _, err := s.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		q    string
		want []uint64
	}{
		// 14 has debug/local7; 3 spells "kernel" but has warning.
		{"log.syslog.severity.name:warning", []uint64{13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
		{"log.syslog.facility.name:kern", []uint64{13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 2, 1}},
		{"log.syslog.facility.name:local7", []uint64{14}},
		{"log.syslog.severity.code:4", []uint64{13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
		{"log.syslog.severity.code>=7", []uint64{14}},
		{"log.syslog.facility.code:23", []uint64{14}},
		{"log.syslog.facility.code:0", []uint64{13, 12, 11, 10, 9, 8, 7, 6, 4, 3, 2, 1}},
		{"log.syslog.procid:2855", []uint64{14, 13, 12, 11, 10, 9, 8, 6, 5, 4, 3, 2, 1}},
		{"log.syslog.procid:02855", []uint64{7}},
		{"input.name:syslog-tcp", []uint64{14, 13, 12, 11, 10, 8, 7, 6, 5, 4, 3, 2, 1}},
		{"input.name:syslog-udp", []uint64{9}},
		{`url.original:"/x"`, []uint64{14, 13, 12, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
		{`url.original:"/x?a=1"`, []uint64{10}},
		{`raw:"<4>1 2026-11-27T13:31:11.640Z web2 kernel 2855 - - GET /x HTTP/1.1"`, []uint64{14, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 1}},
		{`raw:"no message here"`, []uint64{13}},
		{`event.original:x`, []uint64{15}},
		{`raw:*HTTP/1.1`, []uint64{14, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 1}},
	}
	for _, tt := range tests {
		got, _, err := s.SearchEvents(ctx, EventQuery{Where: mustParse(t, tt.q), Limit: 100})
		if err != nil {
			t.Errorf("%s: %v", tt.q, err)
			continue
		}
		if ids := eventIDs(got); !slices.Equal(ids, tt.want) {
			t.Errorf("%s: ids %v, want %v", tt.q, ids, tt.want)
		}
	}
	st, err := s.EventStats(ctx, StatsQuery{By: "log.syslog.severity.name"})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, b := range st {
		counts[b.Key] = b.Count
	}
	if counts["warning"] != 13 || counts["debug"] != 1 || len(counts) != 2 {
		t.Errorf("stats by severity name = %v, want warning 13, debug 1", counts)
	}
}

// TestJournalReplaysLegacySegment: a segment an older build left (rows
// without the packed column, .evj) is replayed after an upgrade.
func TestJournalReplaysLegacySegment(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.duckdb")
	s := openTest(t, Options{Path: path})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ts := at(0)
	row := []driver.Value{uint64(1), ts, ts.Add(time.Second), "web-1", "syslog-tcp", "Failed password for root",
		"203.0.113.9", nil, nil, nil, nil, "root", "sshd", nil, nil, nil, nil, nil,
		`{"log.syslog.procid":"1","process.pid":1}`, "sshd[1]: Failed password for root", nil, nil, ipHash("203.0.113.9"), nil}
	if len(row) != legacyEventCols {
		t.Fatalf("legacy row has %d values, want %d", len(row), legacyEventCols)
	}
	payload := binary.AppendUvarint(nil, 1)
	for _, v := range row {
		var err error
		if payload, err = appendValue(payload, v); err != nil {
			t.Fatal(err)
		}
	}
	rec := binary.LittleEndian.AppendUint32(nil, uint32(len(payload)))
	rec = binary.LittleEndian.AppendUint32(rec, crc32.Checksum(payload, crcTable))
	rec = append(rec, payload...)
	dir := path + ".journal"
	if err := os.WriteFile(segmentPathExt(dir, 7, legacyJournalExt), rec, 0o600); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, Options{Path: path})
	got, err := s.EventsByID(ctx, []uint64{1})
	if err != nil || len(got) != 1 {
		t.Fatalf("EventsByID(1) after replay: %v, %v", got, err)
	}
	g := got[0]
	if g.Raw != "sshd[1]: Failed password for root" || g.Fields["log.syslog.procid"] != "1" || g.Fields["message"] != "Failed password for root" || g.Fields["user.name"] != "root" {
		t.Fatalf("replayed legacy event = %#v", g)
	}
	if _, err := os.Stat(segmentPathExt(dir, 7, legacyJournalExt)); !os.IsNotExist(err) {
		t.Fatalf("legacy segment still there after replay: %v", err)
	}
	// New segments continue after the legacy one's number.
	if seqs, _ := segments(dir); len(seqs) != 1 || seqs[0] != 8 {
		t.Fatalf("segments after replay = %v, want [8]", seqs)
	}
	ids, err := s.AppendEvents(ctx, journalEvents(1, 0))
	if err != nil || ids[0] != 2 {
		t.Fatalf("next id = %v, %v; want 2", ids, err)
	}
}
