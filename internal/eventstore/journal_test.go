package eventstore

import (
	"bytes"
	"context"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/event"
)

// crash closes s the way a crash would leave it: the events acknowledged
// but not yet loaded exist only in the journal.
// A stalled loader (stalledLoader) is released before the close.
func crash(t *testing.T, s *Store, release ...func()) {
	t.Helper()
	s.ev.lmu.Lock()
	s.ev.ld.segs, s.ev.ld.cur, s.ev.ld.pending, s.ev.ld.memRows, s.ev.ld.spilled = nil, loadSeg{}, 0, 0, 0
	s.ev.lmu.Unlock()
	for _, r := range release {
		r()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func journalEvents(n, from int) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		k := from + i
		evs[i] = event.Event{Time: at(time.Duration(k) * time.Second), Host: "web-1", Input: "syslog-tcp",
			Raw: fmt.Sprintf("<38>sshd[1]: Failed password for root from 203.0.113.%d port 22 ssh2", k%250),
			Fields: map[string]any{"message": fmt.Sprintf("Failed password for root from 203.0.113.%d port 22 ssh2", k%250),
				"source.ip": fmt.Sprintf("203.0.113.%d", k%250), "source.port": float64(22), "user.name": "root",
				"n": float64(k), "tags": []any{"a", "b"}}}
	}
	return evs
}

// lazy keeps acknowledged events in the journal until a read asks.
var lazy = Options{LoadRows: 1 << 30, LoadEvery: time.Hour}

func TestJournalReadYourWrites(t *testing.T) {
	s := openTest(t, lazy)
	ctx := context.Background()
	ids, err := s.AppendEvents(ctx, journalEvents(50, 0))
	if err != nil {
		t.Fatal(err)
	}
	if n := s.UnloadedEvents(); n != 50 {
		t.Fatalf("unloaded after append = %d, want 50 (the loader should wait)", n)
	}
	got, _, err := s.SearchEvents(ctx, EventQuery{Where: mustParse(t, "user.name:root"), Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 50 || got[0].ID != ids[49] {
		t.Fatalf("search right after append: %d events (first id %v), want 50 newest first", len(got), got)
	}
	if n := s.UnloadedEvents(); n != 0 {
		t.Fatalf("unloaded after a search = %d, want 0", n)
	}
}

func TestJournalReplayAfterCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.duckdb")
	ctx := context.Background()
	o := lazy
	o.Path = path
	s, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	// Some loaded, some only journaled.
	if _, err := s.AppendEvents(ctx, journalEvents(30, 0)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.EventCount(ctx); err != nil || n != 30 {
		t.Fatalf("count = %d, %v", n, err)
	}
	want := journalEvents(70, 30)
	ids, err := s.AppendEvents(ctx, want[:40])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendEvents(ctx, want[40:]); err != nil {
		t.Fatal(err)
	}
	crash(t, s)
	// A record cut short at the end of the last segment (a write the crash
	// interrupted, never acknowledged) is ignored.
	seqs, err := segments(path + ".journal")
	if err != nil || len(seqs) == 0 {
		t.Fatalf("segments after crash: %v, %v", seqs, err)
	}
	last := segmentPath(path+".journal", seqs[len(seqs)-1])
	f, err := os.OpenFile(last, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{200, 0, 0, 0, 1, 2, 3, 4, 5})
	f.Close()

	s2 := openTest(t, Options{Path: path})
	if n, err := s2.EventCount(ctx); err != nil || n != 100 {
		t.Fatalf("count after replay = %d, %v; want 100", n, err)
	}
	got, err := s2.EventsByID(ctx, ids[:1])
	if err != nil || len(got) != 1 {
		t.Fatalf("EventsByID after replay: %v, %v", got, err)
	}
	if got[0].Fields["message"] != want[0].Fields["message"] || !reflect.DeepEqual(got[0].Fields["tags"], []any{"a", "b"}) || got[0].Raw != want[0].Raw {
		t.Fatalf("replayed event differs: %+v", got[0])
	}
	if seqs, _ := segments(path + ".journal"); len(seqs) != 1 {
		t.Fatalf("segments after replay = %v, want only the fresh one", seqs)
	}
	// New ids continue after the replayed ones.
	more, err := s2.AppendEvents(ctx, journalEvents(1, 100))
	if err != nil || more[0] != ids[len(ids)-1]+31 {
		t.Fatalf("next id = %v (%v), want %d", more, err, ids[len(ids)-1]+31)
	}
}

// TestJournalReplaySkipsLoaded: a segment whose rows were loaded but
// which was not deleted (a crash in between) adds nothing on replay.
func TestJournalReplaySkipsLoaded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.duckdb")
	ctx := context.Background()
	o := lazy
	o.Path = path
	s, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendEvents(ctx, journalEvents(20, 0)); err != nil {
		t.Fatal(err)
	}
	seqs, _ := segments(path + ".journal")
	seg := segmentPath(path+".journal", seqs[0])
	saved, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := s.EventCount(ctx); n != 20 { // loads and deletes the segment
		t.Fatalf("count = %d", n)
	}
	if _, err := os.Stat(seg); !os.IsNotExist(err) {
		t.Fatalf("loaded segment still there: %v", err)
	}
	crash(t, s)
	if err := os.WriteFile(seg, saved, 0o600); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, Options{Path: path})
	if n, err := s2.EventCount(ctx); err != nil || n != 20 {
		t.Fatalf("count after replaying a loaded segment = %d, %v; want 20", n, err)
	}
}

// TestJournalBackPressure: with a small MaxBacklog (on disk, segments
// spilled beyond MaxPending) or MaxPending (in memory), many concurrent
// writers neither deadlock nor lose rows, and the loader never falls far
// behind.
func TestJournalBackPressure(t *testing.T) {
	t.Run("disk", func(t *testing.T) {
		testBackPressure(t, Options{LoadRows: 100, LoadEvery: time.Hour, MaxPending: 150, MaxBacklog: 400})
	})
	t.Run("memory", func(t *testing.T) {
		testBackPressure(t, Options{Path: ":memory:", LoadRows: 100, LoadEvery: time.Hour, MaxPending: 150})
	})
}

func testBackPressure(t *testing.T, o Options) {
	s := openTest(t, o)
	ctx := context.Background()
	errs := make(chan error, 8)
	for w := range 8 {
		go func() {
			for i := range 20 {
				if _, err := s.AppendEvents(ctx, journalEvents(25, w*1000+i*25)); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.EventCount(ctx); err != nil || n != 8*20*25 {
		t.Fatalf("count = %d, %v; want %d", n, err, 8*20*25)
	}
}

func TestJournalEncodingRoundTrip(t *testing.T) {
	row := make([]driver.Value, eventCols)
	vals := []driver.Value{uint64(1 << 40), time.Date(2026, 11, 27, 9, 1, 2, 345678000, time.UTC), nil, "héllo\x00", "",
		int32(-7), int64(-1 << 62), true, false, []byte{0, 1, 255}}
	for i := range row {
		row[i] = vals[i%len(vals)]
	}
	var b []byte
	var err error
	b = append(b, 1) // one row
	for _, v := range row {
		if b, err = appendValue(b, v); err != nil {
			t.Fatal(err)
		}
	}
	got, err := decodeRecord(b, eventCols)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got[0], row) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", got[0], row)
	}
	for cut := range len(b) - 1 {
		if _, err := decodeRecord(b[:cut+1], eventCols); err == nil {
			t.Fatalf("a record cut at %d bytes decoded without error", cut+1)
		}
	}
	if _, err := appendValue(nil, 1.5); err == nil {
		t.Fatal("a float64 value encoded; want an error (no column holds one)")
	}
}

// TestJournalFullSegmentsLoad: once the open segment holds LoadRows rows
// it is closed and loaded whole, without a read asking; the rest waits.
// A crash with closed and open segments pending replays both.
func TestJournalFullSegmentsLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.duckdb")
	ctx := context.Background()
	s, err := Open(ctx, Options{Path: path, LoadRows: 100, LoadEvery: time.Hour, MaxPending: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := s.AppendEvents(ctx, journalEvents(45, i*45)); err != nil {
			t.Fatal(err)
		}
	}
	// Records are never split: segments close at 135 rows (3 × 45), so
	// 405 rows are in closed segments and 45 wait in the open one.
	deadline := time.Now().Add(30 * time.Second)
	for s.UnloadedEvents() != 45 {
		if time.Now().After(deadline) {
			t.Fatalf("unloaded = %d after 30 s, want 45 (the full segments loaded, the open one waiting)", s.UnloadedEvents())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if seqs, _ := segments(path + ".journal"); len(seqs) != 1 {
		t.Fatalf("segments = %v, want only the open one (loaded ones deleted)", seqs)
	}
	// One more full segment (the loader may or may not have loaded it)
	// and an open one, then a crash: replay adds what DuckDB lacks.
	for i := 10; i < 13; i++ {
		if _, err := s.AppendEvents(ctx, journalEvents(45, i*45)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AppendEvents(ctx, journalEvents(15, 585)); err != nil {
		t.Fatal(err)
	}
	crash(t, s)

	s2 := openTest(t, Options{Path: path})
	if n, err := s2.EventCount(ctx); err != nil || n != 600 {
		t.Fatalf("count after replay = %d, %v; want 600", n, err)
	}
	got, _, err := s2.SearchEvents(ctx, EventQuery{Where: mustParse(t, "n:599"), Limit: 10})
	if err != nil || len(got) != 1 {
		t.Fatalf("last event after replay: %v, %v", got, err)
	}
}

// appendValue encodes one value as the journal does (encode writes rows
// without it; the tests build records value by value).
func appendValue(b []byte, v driver.Value) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, tagNil), nil
	case string:
		b = append(b, tagString)
		b = binary.AppendUvarint(b, uint64(len(x)))
		return append(b, x...), nil
	case uint64:
		return binary.AppendUvarint(append(b, tagUint64), x), nil
	case int64:
		return binary.AppendVarint(append(b, tagInt64), x), nil
	case int32:
		return binary.AppendVarint(append(b, tagInt32), int64(x)), nil
	case time.Time:
		// Microseconds, DuckDB's TIMESTAMP precision; Unix nanoseconds would
		// overflow for years outside 1678–2262.
		return binary.AppendVarint(append(b, tagTime), x.UnixMicro()), nil
	case bool:
		if x {
			return append(b, tagTrue), nil
		}
		return append(b, tagFalse), nil
	case []byte:
		b = append(b, tagBytes)
		b = binary.AppendUvarint(b, uint64(len(x)))
		return append(b, x...), nil
	}
	return b, fmt.Errorf("journal: cannot encode a %T", v)
}

// TestEncodeRow: an event encoded for the journal, its id put in at
// commit, decodes to the columns of the events table.
func TestEncodeRow(t *testing.T) {
	var rb rowBuilder
	ts := time.Date(2026, 11, 27, 9, 1, 2, 345678000, time.UTC)
	e := event.Event{Time: ts, Host: "web-1", Raw: "raw line \xff", ParseError: "bad",
		Fields: map[string]any{"source.ip": "203.0.113.9", "source.port": "22", "http.response.status_code": float64(404), "n": float64(1)}}
	b, err := rb.encode(binary.AppendUvarint(nil, 1), &e, ts.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	putID(b[1:], 1<<40+3)
	rows, err := decodeRecord(b, eventCols)
	if err != nil || len(rows) != 1 {
		t.Fatalf("decode: %v, %v", rows, err)
	}
	r := rows[0]
	key := netip.MustParseAddr("203.0.113.9").As16()
	want := []driver.Value{uint64(1<<40 + 3), ts.Truncate(time.Microsecond), ts.Add(time.Second).Truncate(time.Microsecond), "web-1", nil,
		"raw line \uFFFD", // no message field: the raw text, message_from_raw set
		"203.0.113.9", key[:], int32(22), nil, nil, nil, nil, nil, nil, nil, int32(404), nil,
		`{"n":1,"source.port":"22"}`, // the port came as text: kept in the JSON too
		nil,                          // raw: in the message column (packed says so)
		"bad", true, ipHash("203.0.113.9"), nil, int32(packRawIsMessage)}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("decoded row\n got %#v\nwant %#v", r, want)
	}
}

// TestLoaderRunsNiced: on Linux the loader's thread (DuckDB's appends and
// checkpoints) runs at LoaderNice, and the lowering stays on that thread.
func TestLoaderRunsNiced(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("per-thread nice is Linux-only")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	base, err := threadNice()
	if err != nil {
		t.Fatal(err)
	}
	s := openTest(t, Options{Path: filepath.Join(t.TempDir(), "events.duckdb")})
	want := int32(max(base, LoaderNice))
	for deadline := time.Now().Add(10 * time.Second); s.ev.loaderNice.Load() != want; {
		if time.Now().After(deadline) {
			t.Fatalf("loader thread nice = %d, want %d", s.ev.loaderNice.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
	if n, _ := threadNice(); n != base {
		t.Fatalf("this goroutine's thread nice = %d, want %d: the lowering leaked", n, base)
	}
}

// TestJournalBorrowedRows: the loader's borrowed decode (own false) gives
// every row the same values as the owning decode, although its values
// share storage from row to row, and allocates nothing per row.
func TestJournalBorrowedRows(t *testing.T) {
	rows := [][]driver.Value{
		{uint64(1 << 40), time.Date(2026, 11, 27, 9, 1, 2, 345678000, time.UTC), "a", nil, int32(-7), int64(-1 << 62), []byte{1, 2}, uint64(3)},
		{uint64(1<<40 + 1), time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), nil, "b", int32(8), int64(9), nil, uint64(1 << 50)},
		{uint64(7), time.Unix(0, 0).UTC(), "ccc", "dd", nil, int64(-1), []byte{}, nil},
	}
	var rec []byte
	for i := range 300 {
		if i == 0 {
			rec = binary.AppendUvarint(rec, 300)
		}
		for c := range eventCols {
			var err error
			if rec, err = appendValue(rec, rows[i%len(rows)][c%8]); err != nil {
				t.Fatal(err)
			}
		}
	}
	want, err := decodeRecord(rec, eventCols)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	if err := eachRow(rec, false, nil, func(row []driver.Value) error {
		if !reflect.DeepEqual(row, want[i]) {
			t.Fatalf("row %d:\n got %#v\nwant %#v", i, row, want[i])
		}
		i++
		return nil
	}); err != nil || i != len(want) {
		t.Fatalf("eachRow: %d rows, %v", i, err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		_ = eachRow(rec, false, nil, func([]driver.Value) error { return nil })
	})
	if allocs > 4 {
		t.Errorf("decoding %d borrowed rows made %.0f allocations; want a few per record, none per row", len(want), allocs)
	}
}

// stalledLoader opens a store on disk whose loader waits, before each
// load, until the returned function is called.
func stalledLoader(t *testing.T, o Options) (*Store, func()) {
	t.Helper()
	gate := make(chan struct{})
	o.beforeLoad = func() { <-gate }
	s := openTest(t, o)
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release) // before Close, which waits for the loader
	return s, release
}

// appendStalled appends 10 records of 45 events (n 0…449) while the loader
// is stalled and checks that no call was paced: with LoadRows 100 they
// fill three closed segments of 135 events and leave 45 in the open one.
func appendStalled(t *testing.T, s *Store) []event.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var all []event.Event
	for i := range 10 {
		evs := journalEvents(45, i*45)
		if _, err := s.AppendEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		all = append(all, evs...)
	}
	if ctx.Err() != nil {
		t.Fatal("an append was paced although the backlog was under MaxBacklog")
	}
	return all
}

// TestJournalSpillsToDisk: while the loader is behind by more than
// MaxPending, closed segments are dropped from memory (spilled) instead of
// pacing the writers; the loader reads them back from their files, and
// every event arrives intact.
func TestJournalSpillsToDisk(t *testing.T) {
	s, release := stalledLoader(t, Options{LoadRows: 100, LoadEvery: time.Hour, MaxPending: 150, MaxBacklog: 1 << 20})
	ctx := context.Background()
	want := appendStalled(t, s)
	if n := s.UnloadedEvents(); n != 450 {
		t.Fatalf("unloaded = %d, want 450", n)
	}
	// The first closed segment fits in MaxPending; the next two do not.
	if n := s.SpilledEvents(); n != 270 {
		t.Fatalf("spilled = %d, want 270 (segments 2 and 3)", n)
	}
	s.ev.lmu.Lock()
	held := 0
	for _, sg := range s.ev.ld.segs {
		held += len(sg.recs)
	}
	memRows := s.ev.ld.memRows
	s.ev.lmu.Unlock()
	if held != 3 || memRows != 180 {
		t.Fatalf("records held in memory = %d (%d rows), want 3 (the first segment's) and 180 rows with the open one", held, memRows)
	}

	release()
	if n, err := s.EventCount(ctx); err != nil || n != 450 {
		t.Fatalf("count = %d, %v; want 450", n, err)
	}
	if n := s.SpilledEvents(); n != 0 {
		t.Fatalf("spilled after loading = %d", n)
	}
	// An event of a spilled segment reads back as it was appended.
	got, _, err := s.SearchEvents(ctx, EventQuery{Where: mustParse(t, "n:300"), Limit: 10})
	if err != nil || len(got) != 1 {
		t.Fatalf("event 300: %v, %v", got, err)
	}
	w := want[300]
	if !reflect.DeepEqual(got[0].Fields, w.Fields) || got[0].Raw != w.Raw || !got[0].Time.Equal(w.Time) {
		t.Fatalf("event 300 read back\n got %+v\nwant %+v", got[0], w)
	}
	if seqs, _ := segments(s.o.Path + ".journal"); len(seqs) != 1 {
		t.Fatalf("segments = %v, want only the open one", seqs)
	}
}

// TestJournalSpilledReplay: spilled segments are files like any other: a
// crash before they are loaded replays them.
func TestJournalSpilledReplay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.duckdb")
	s, release := stalledLoader(t, Options{Path: path, LoadRows: 100, LoadEvery: time.Hour, MaxPending: 150, MaxBacklog: 1 << 20})
	appendStalled(t, s)
	if n := s.SpilledEvents(); n != 270 {
		t.Fatalf("spilled = %d, want 270", n)
	}
	// The loader, stalled in its first load, may still load the first
	// segment once released; crash forgets the rest.
	crash(t, s, release)
	s2 := openTest(t, Options{Path: path})
	if n, err := s2.EventCount(context.Background()); err != nil || n != 450 {
		t.Fatalf("count after replay = %d, %v; want 450", n, err)
	}
}

// TestJournalDamagedSpill: a spilled segment damaged on disk before the
// loader reads it back loses only what is damaged: the intact records
// before it load, the file is kept aside, the loss is counted, and the
// store goes on.
func TestJournalDamagedSpill(t *testing.T) {
	var logs bytes.Buffer
	s, release := stalledLoader(t, Options{LoadRows: 100, LoadEvery: time.Hour, MaxPending: 150, MaxBacklog: 1 << 20,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	appendStalled(t, s)
	dir := s.o.Path + ".journal"
	seqs, err := segments(dir)
	if err != nil || len(seqs) != 4 {
		t.Fatalf("segments = %v, %v; want 3 closed and the open one", seqs, err)
	}
	// Segment 2 (spilled) holds records of 45 events each: flip a byte in
	// its second record's payload.
	seg := segmentPath(dir, seqs[1])
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	first := 8 + int(binary.LittleEndian.Uint32(b))
	b[first+8+20] ^= 0xff
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}

	release()
	if n, err := s.EventCount(ctx); err != nil || n != 450-90 {
		t.Fatalf("count = %d, %v; want 360 (two damaged records of 45 lost)", n, err)
	}
	if n := s.LostEvents(); n != 90 {
		t.Fatalf("lost = %d, want 90", n)
	}
	if _, err := os.Stat(seg + damagedExt); err != nil {
		t.Fatalf("damaged segment not kept: %v", err)
	}
	if !strings.Contains(logs.String(), "events_lost=90") || !strings.Contains(logs.String(), "intact_bytes="+strconv.Itoa(first)) {
		t.Fatalf("log does not report the loss with its offset:\n%s", logs.String())
	}
	// The store goes on.
	if _, err := s.AppendEvents(ctx, journalEvents(5, 1000)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.EventCount(ctx); err != nil || n != 365 {
		t.Fatalf("count after more appends = %d, %v", n, err)
	}
}

// TestAwaitSearchable: with the loader stalled, AwaitSearchable gives up
// after its wait and counts the acknowledged events not yet loaded, and a
// NoWait search, count or entity query sees exactly the loaded ones; once the loader
// moves on, it returns 0 and the search sees everything.
func TestAwaitSearchable(t *testing.T) {
	var stall atomic.Bool
	gate := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	s := openTest(t, Options{LoadRows: 100, LoadEvery: time.Hour, beforeLoad: func() {
		if stall.Load() {
			<-gate
		}
	}})
	ctx := context.Background()
	if _, err := s.AppendEvents(ctx, journalEvents(45, 0)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.AwaitSearchable(ctx, time.Minute); err != nil || n != 0 {
		t.Fatalf("AwaitSearchable with the loader running = %d, %v; want 0", n, err)
	}
	stall.Store(true)
	if _, err := s.AppendEvents(ctx, journalEvents(90, 45)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.AwaitSearchable(ctx, 20*time.Millisecond); err != nil || n != 90 {
		t.Fatalf("AwaitSearchable with the loader stalled = %d, %v; want 90", n, err)
	}
	root := mustParse(t, "user.name:root")
	got, _, err := s.SearchEvents(ctx, EventQuery{Where: root, Limit: 1000, NoWait: true})
	if err != nil || len(got) != 45 || got[0].Fields["n"] != float64(44) {
		t.Fatalf("NoWait search = %d events (%v), want the 45 loaded, newest n=44", len(got), err)
	}
	st, err := s.EventStats(ctx, StatsQuery{Where: root, By: "user.name", NoWait: true})
	if err != nil || len(st) != 1 || st[0].Count != 45 {
		t.Fatalf("NoWait stats = %+v, %v; want root: 45", st, err)
	}
	host, err := s.EntityEvents(ctx, EntityQuery{Entity: EntityHost, Value: "web-1", From: at(0), To: at(time.Hour), Limit: 1000, NoWait: true})
	if err != nil || len(host) != 45 {
		t.Fatalf("NoWait entity events = %d, %v; want the 45 loaded", len(host), err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.AwaitSearchable(cctx, time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("AwaitSearchable with a canceled context: err = %v", err)
	}

	release()
	if n, err := s.AwaitSearchable(ctx, time.Minute); err != nil || n != 0 {
		t.Fatalf("AwaitSearchable after the loader moved on = %d, %v; want 0", n, err)
	}
	got, _, err = s.SearchEvents(ctx, EventQuery{Where: root, Limit: 1000, NoWait: true})
	if err != nil || len(got) != 135 {
		t.Fatalf("NoWait search after loading = %d events (%v), want 135", len(got), err)
	}
}
