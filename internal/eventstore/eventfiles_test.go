package eventstore

import (
	"bytes"
	"context"
	"database/sql/driver"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/nocsoc/nocsoc/internal/event"
)

// storeBoth appends evs, in batches of batch, to a file-backed store
// (event files) and an in-memory one (the events table) opened with o.
func storeBoth(t *testing.T, o Options, evs []event.Event, batch int) (files, table *Store) {
	t.Helper()
	files = openTest(t, o)
	o.Path = ":memory:"
	table = openTest(t, o)
	for _, s := range []*Store{files, table} {
		for i := 0; i < len(evs); i += batch {
			if _, err := s.AppendEvents(context.Background(), slices.Clone(evs[i:min(i+batch, len(evs))])); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.syncEvents(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return files, table
}

// sameAnswers fails unless files and table answer the same searches,
// stats and exports.
func sameAnswers(t *testing.T, files, table *Store) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []string{"", "user.name:root", `"Failed password"`, "source.ip:203.0.113.0/28",
		"source.ip:203.0.113.7", "n>=100 AND n<300", "NOT tags:a", "host.name:web-1 AND source.port:22"} {
		eq := EventQuery{Limit: MaxLimit}
		if q != "" {
			eq.Where = mustParse(t, q)
		}
		for page := 0; ; page++ {
			a, anext, aerr := files.SearchEvents(ctx, eq)
			b, bnext, berr := table.SearchEvents(ctx, eq)
			if aerr != nil || berr != nil {
				t.Fatalf("search %q: %v / %v", q, aerr, berr)
			}
			if !reflect.DeepEqual(a, b) || anext != bnext {
				t.Fatalf("search %q page %d: files gave %d events (ids %v…), the table %d (%v…)", q, page, len(a), eventIDs(a[:min(5, len(a))]), len(b), eventIDs(b[:min(5, len(b))]))
			}
			if anext == "" {
				break
			}
			eq.Cursor = anext
		}
		var ab, bb bytes.Buffer
		if _, err := files.ExportEvents(ctx, EventQuery{Where: eq.Where}, &ab, FormatCSV); err != nil {
			t.Fatal(err)
		}
		if _, err := table.ExportEvents(ctx, EventQuery{Where: eq.Where}, &bb, FormatCSV); err != nil {
			t.Fatal(err)
		}
		if ab.String() != bb.String() {
			t.Fatalf("export %q differs: %d bytes against %d", q, ab.Len(), bb.Len())
		}
	}
	for _, sq := range []StatsQuery{{By: "source.ip", Limit: 20}, {Interval: time.Minute}, {By: "user.name", Interval: time.Hour}} {
		a, aerr := files.EventStats(ctx, sq)
		b, berr := table.EventStats(ctx, sq)
		if aerr != nil || berr != nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("stats %+v: files %v (%v), table %v (%v)", sq, a, aerr, b, berr)
		}
	}
	for _, v := range []string{"203.0.113.7", "root"} {
		ent := EntityIP
		if v == "root" {
			ent = EntityUser
		}
		eq := EntityQuery{Entity: ent, Value: v, From: at(-time.Hour), To: at(48 * time.Hour), Limit: MaxLimit}
		a, aerr := files.EntityEvents(ctx, eq)
		b, berr := table.EntityEvents(ctx, eq)
		if aerr != nil || berr != nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("pivot %s: files %d events (%v), table %d (%v)", v, len(a), aerr, len(b), berr)
		}
	}
	ids := []uint64{1, 77, 1500, 4999, 99999}
	a, aerr := files.EventsByID(ctx, ids)
	b, berr := table.EventsByID(ctx, ids)
	if aerr != nil || berr != nil || !reflect.DeepEqual(a, b) {
		t.Fatalf("by id: files %v (%v), table %v (%v)", eventIDs(a), aerr, eventIDs(b), berr)
	}
}

func tableRows(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestEventFilesAnswerAsTheTable: a file-backed store keeps its events in
// event files, one a load, and answers every kind of read exactly as a
// store whose events are rows of the events table.
func TestEventFilesAnswerAsTheTable(t *testing.T) {
	evs := journalEvents(5000, 0)
	files, table := storeBoth(t, Options{LoadRows: 700, MergeRows: 1}, evs, 250)
	if n := tableRows(t, files); n != 0 {
		t.Errorf("the events table holds %d rows; want all in files", n)
	}
	snap := files.ev.files.snapshot()
	if len(snap) < 5000/950 {
		t.Fatalf("%d event files for 5000 events loaded 700 at a time", len(snap))
	}
	var rows int64
	for i, f := range snap {
		rows += f.rows
		if i > 0 && f.first != snap[i-1].last+1 {
			t.Errorf("file %d starts at id %d after %d", i, f.first, snap[i-1].last)
		}
	}
	if rows != 5000 {
		t.Errorf("files hold %d rows, want 5000", rows)
	}
	sameAnswers(t, files, table)
	if n, err := files.EventCount(context.Background()); err != nil || n != 5000 {
		t.Errorf("EventCount = %d, %v", n, err)
	}
}

// TestEventFilesMerge: small files are merged by copying their row groups;
// the merged files read back exactly, and what is left is not worth a
// merge.
func TestEventFilesMerge(t *testing.T) {
	var merges int
	evs := journalEvents(5000, 0)
	files, table := storeBoth(t, Options{LoadRows: 90, MergeRows: 1000, OnMerge: func(int, int64) { merges++ }}, evs, 30)
	for files.mergeOnce() {
	}
	snap := files.ev.files.snapshot()
	ptrs := make([]*eventFile, len(snap))
	for i := range snap {
		ptrs[i] = &snap[i]
	}
	if run := pickMerge(ptrs, 1000); run != nil {
		t.Errorf("after merging, a run of %d files is still due", len(run))
	}
	if len(snap) > 15 {
		t.Errorf("%d files after merging 5000 events up to 1000 rows a file", len(snap))
	}
	ents, err := os.ReadDir(files.ev.files.dir)
	if err != nil || len(ents) != len(snap) {
		t.Errorf("the directory holds %d files, the index %d (%v)", len(ents), len(snap), err)
	}
	sameAnswers(t, files, table)
	// A reopened store reads the same files.
	path := files.o.Path
	if err := files.Close(); err != nil {
		t.Fatal(err)
	}
	files = openTest(t, Options{Path: path, MergeRows: 1000})
	if got := files.ev.files.snapshot(); !reflect.DeepEqual(got, snap) {
		t.Errorf("reopened index differs:\n got %+v\nwant %+v", got, snap)
	}
	sameAnswers(t, files, table)
}

func TestPickMerge(t *testing.T) {
	mk := func(rows ...int64) []*eventFile {
		out := make([]*eventFile, len(rows))
		for i, r := range rows {
			out[i] = &eventFile{first: uint64(i), last: uint64(i), rows: r}
		}
		return out
	}
	rowsOf := func(fs []*eventFile) []int64 {
		var out []int64
		for _, f := range fs {
			out = append(out, f.rows)
		}
		return out
	}
	tests := []struct {
		files []int64
		want  []int64
	}{
		{[]int64{100}, nil},
		{[]int64{100, 100}, nil},                           // neither many files nor half of 1000 rows
		{[]int64{300, 300}, []int64{300, 300}},             // half of 1000
		{[]int64{1000, 300, 300, 1000}, []int64{300, 300}}, // full files are not merged
		{[]int64{900, 200, 300, 100}, []int64{200, 300, 100}},
		{[]int64{600, 600, 600}, []int64{600}[:0]}, // no two fit together
		{[]int64{10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10}, []int64{10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10}},
	}
	for _, tt := range tests {
		got := rowsOf(pickMerge(mk(tt.files...), 1000))
		if !slices.Equal(got, tt.want) {
			t.Errorf("pickMerge(%v) = %v, want %v", tt.files, got, tt.want)
		}
	}
}

// TestEventFilesCrashLeftovers: what a crash leaves of a merge or a
// retention rewrite (the new file and the old ones), of a file being
// written (a temporary file) or of a load (the journal segment of a file
// already written) is resolved at Open, without losing or repeating an
// event.
func TestEventFilesCrashLeftovers(t *testing.T) {
	ctx := context.Background()
	evs := journalEvents(3000, 0)
	files, table := storeBoth(t, Options{LoadRows: 500, MergeRows: 1}, evs, 500)
	path, dir := files.o.Path, files.ev.files.dir
	snap := files.ev.files.snapshot()
	if len(snap) != 6 {
		t.Fatalf("%d files, want 6", len(snap))
	}
	// A journal segment still holding loaded rows: the appended events
	// are journaled, the segment copied, then loaded.
	more := journalEvents(100, 3000)
	if _, err := files.AppendEvents(ctx, slices.Clone(more)); err != nil {
		t.Fatal(err)
	}
	if _, err := table.AppendEvents(ctx, slices.Clone(more)); err != nil {
		t.Fatal(err)
	}
	files.ev.commitMu.Lock()
	seq := files.ev.jn.seq
	files.ev.commitMu.Unlock()
	seg, err := os.ReadFile(segmentPath(files.ev.jn.dir, seq))
	if err != nil {
		t.Fatal(err)
	}
	if err := files.syncEvents(ctx); err != nil {
		t.Fatal(err)
	}
	// A merge of the first two files and a rewrite of the third, each
	// interrupted before the old files were deleted.
	ptrs := func(fs []eventFile) []*eventFile {
		out := make([]*eventFile, len(fs))
		for i := range fs {
			out[i] = &fs[i]
		}
		return out
	}(snap)
	if _, err := mergeFiles(dir, ptrs[:2]); err != nil {
		t.Fatal(err)
	}
	if _, _, err := rewriteFiles(dir, ptrs[2:3], func(id uint64, _ int64) bool { return id == 1001 }); err != nil {
		t.Fatal(err)
	}
	if _, err := table.db.Exec(`DELETE FROM events WHERE id = 1001`); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "write-123.parquet.tmp"), []byte("PAR1 half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := files.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(segmentPath(path+".journal", seq), seg, 0o600); err != nil {
		t.Fatal(err)
	}
	files = openTest(t, Options{Path: path, MergeRows: 1})
	got := files.ev.files.snapshot()
	if len(got) != 6 || got[0].rows != 1000 || got[1].rows != 499 {
		t.Errorf("after reopening: %+v; want 6 files, the first the merge of two, the second the rewrite", got)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != len(got) {
		t.Errorf("the directory holds %d files, the index %d", len(ents), len(got))
	}
	if n, err := files.EventCount(ctx); err != nil || n != 3099 {
		t.Errorf("EventCount = %d, %v; want 3099", n, err)
	}
	sameAnswers(t, files, table)
	// Ids continue after the files' last.
	if ids, err := files.AppendEvents(ctx, journalEvents(1, 9)); err != nil || ids[0] != 3101 {
		t.Errorf("next id = %v, %v; want 3101", ids, err)
	}
}

// TestEventFilesRetention: retention deletes whole files, rewrites the
// one its cut falls in, and never deletes a file a running query reads
// until the query ends.
func TestEventFilesRetention(t *testing.T) {
	ctx := context.Background()
	evs := journalEvents(3000, 0) // event i at t0 + i s
	files, table := storeBoth(t, Options{LoadRows: 500, MergeRows: 1}, evs, 500)
	held := files.ev.files.acquire(allFiles)
	now := at(3000 * time.Second)
	for _, s := range []*Store{files, table} {
		p, err := s.PlanRetention(ctx, Retention{MaxAge: 1750 * time.Second}, now)
		if err != nil || p.Rows != 1250 {
			t.Fatalf("plan = %+v, %v; want 1250 rows", p, err)
		}
		if n, err := s.ApplyRetention(ctx, p); err != nil || n != 1250 {
			t.Fatalf("applied %d, %v; want 1250", n, err)
		}
	}
	sameAnswers(t, files, table)
	snap := files.ev.files.snapshot()
	if len(snap) != 4 || snap[0].rows != 250 || snap[0].minTS != at(1250*time.Second).UnixMicro() || snap[0].first != 1001 {
		t.Errorf("files after retention: %+v; want 4, the first rewritten to its last 250 rows", snap)
	}
	for _, f := range held[:3] {
		if _, err := os.Stat(f.path); err != nil {
			t.Errorf("a file a query still reads was deleted: %v", err)
		}
	}
	files.ev.files.release(held)
	for _, f := range held[:3] {
		if _, err := os.Stat(f.path); !os.IsNotExist(err) {
			t.Errorf("%s: not deleted once released (%v)", f.path, err)
		}
	}
	ents, _ := os.ReadDir(files.ev.files.dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 4 || !strings.HasPrefix(names[0], "00000000000000001001-00000000000000001500_") {
		t.Errorf("directory: %v", names)
	}
}

// TestEventFilesDamagedAtOpen: a file cut short on disk is set aside at
// Open and its events counted lost (NocsocEventsLost), so that it cannot
// fail every search; a file that is not an event file is ignored.
func TestEventFilesDamagedAtOpen(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{LoadRows: 500, MergeRows: 1})
	for i := 0; i < 1500; i += 500 {
		if _, err := s.AppendEvents(ctx, journalEvents(500, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.syncEvents(ctx); err != nil {
		t.Fatal(err)
	}
	path, snap := s.o.Path, s.ev.files.snapshot()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if len(snap) != 3 {
		t.Fatalf("%d files, want 3", len(snap))
	}
	if err := os.Truncate(snap[1].path, snap[1].bytes-3); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(filepath.Dir(snap[0].path), "notes.txt")
	if err := os.WriteFile(stray, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, Options{Path: path, MergeRows: 1})
	if n := s.LostEvents(); n != 500 {
		t.Errorf("LostEvents = %d, want the damaged file's 500", n)
	}
	if _, err := os.Stat(snap[1].path + damagedExt); err != nil {
		t.Errorf("damaged file not kept aside: %v", err)
	}
	if _, err := os.Stat(stray); err != nil {
		t.Errorf("a file that is not an event file was touched: %v", err)
	}
	evs, _, err := s.SearchEvents(ctx, EventQuery{Limit: MaxLimit})
	if err != nil || len(evs) != 1000 {
		t.Fatalf("search after setting aside: %d events, %v; want 1000", len(evs), err)
	}
	// Ids continue after the files'.
	if ids, err := s.AppendEvents(ctx, journalEvents(1, 0)); err != nil || ids[0] != 1501 {
		t.Errorf("next id = %v, %v; want 1501", ids, err)
	}
}

func TestParseEventFileName(t *testing.T) {
	good := eventFileName(3, 9, -5, 7, 4)
	f, ok := parseEventFileName(good)
	if !ok || f.first != 3 || f.last != 9 || f.minTS != -5 || f.maxTS != 7 || f.rows != 4 {
		t.Errorf("parse(%q) = %+v, %v", good, f, ok)
	}
	for _, bad := range []string{"x.parquet", "1-2_3_4.parquet", "2-1_0_0_1.parquet", "1-2_5_4_1.parquet",
		"1-2_0_0_0.parquet", "1-2_0_0_1.parquet.tmp", "a-2_0_0_1.parquet", good + damagedExt} {
		if f, ok := parseEventFileName(bad); ok {
			t.Errorf("parse(%q) = %+v, accepted", bad, f)
		}
	}
}

// TestEventFilesMergeSmall: files much smaller than a segment (loads at a
// low rate) are merged by re-encoding, into one row group per merged file
// rather than one per small file.
func TestEventFilesMergeSmall(t *testing.T) {
	ctx := context.Background()
	o := Options{LoadRows: 1000, MergeRows: 1000}
	files := openTest(t, o)
	o.Path = ":memory:"
	table := openTest(t, o)
	evs := journalEvents(2000, 0)
	for _, s := range []*Store{files, table} {
		for i := 0; i < len(evs); i += 50 {
			if _, err := s.AppendEvents(ctx, slices.Clone(evs[i:i+50])); err != nil {
				t.Fatal(err)
			}
			if err := s.syncEvents(ctx); err != nil { // a load of 50 rows
				t.Fatal(err)
			}
		}
	}
	for files.mergeOnce() {
	}
	snap := files.ev.files.snapshot()
	if len(snap) > 4 {
		t.Errorf("%d files after merging 40 files of 50 rows up to 1000 rows a file", len(snap))
	}
	for _, f := range snap {
		var groups int
		if err := files.db.QueryRow(`SELECT count(DISTINCT row_group_id) FROM parquet_metadata(` + sqlString(f.path) + `)`).Scan(&groups); err != nil {
			t.Fatal(err)
		}
		if f.rows > 50 && groups != 1 {
			t.Errorf("%s: %d row groups for %d rows; want one", filepath.Base(f.path), groups, f.rows)
		}
	}
	sameAnswers(t, files, table)
}

// TestEventFilesReadsDuringMerges: searches, stats and exports running
// while the loader writes and merges files and retention rewrites them
// never fail on a file that went away, and every event stays findable.
func TestEventFilesReadsDuringMerges(t *testing.T) {
	ctx := context.Background()
	var merges atomic.Int64
	s := openTest(t, Options{LoadRows: 100, MergeRows: 800, LoadEvery: time.Millisecond,
		OnMerge: func(int, int64) { merges.Add(1) }})
	stop := make(chan struct{})
	errc := make(chan error, 3)
	for r := range 3 {
		go func() {
			for {
				select {
				case <-stop:
					errc <- nil
					return
				default:
				}
				var err error
				switch r {
				case 0:
					_, _, err = s.SearchEvents(ctx, EventQuery{Where: mustParse(t, "user.name:root"), Limit: 50, NoWait: true})
				case 1:
					_, err = s.EventStats(ctx, StatsQuery{By: "source.ip", NoWait: true})
				case 2:
					_, err = s.ExportEvents(ctx, EventQuery{Limit: 500}, io.Discard, FormatNDJSON)
				}
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	evs := journalEvents(6000, 0)
	for i := 0; i < len(evs); i += 100 {
		if _, err := s.AppendEvents(ctx, slices.Clone(evs[i:i+100])); err != nil {
			t.Fatal(err)
		}
		if i == 3000 {
			p, err := s.PlanRetention(ctx, Retention{MaxAge: 6000*time.Second - 1500*time.Second - 50*time.Second}, at(6000*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if n, err := s.ApplyRetention(ctx, p); err != nil || n != 1550 {
				t.Fatalf("retention deleted %d, %v; want 1550", n, err)
			}
		}
	}
	close(stop)
	for range 3 {
		if err := <-errc; err != nil {
			t.Fatalf("a read during merges failed: %v", err)
		}
	}
	for s.mergeOnce() {
	}
	n, err := s.EventCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := s.SearchEvents(ctx, EventQuery{Limit: MaxLimit})
	if err != nil || n != 4450 || len(got) != min(4450, MaxLimit) {
		t.Fatalf("search: %d events, %v; EventCount %d; want 4450", len(got), err, n)
	}
	if merges.Load() == 0 {
		t.Error("no merge ran while the reads did")
	}
}

// TestEventFileRowGroups: writeEventFile writes its rows column by
// column and cuts a row group every eventFileGroupRows rows; DuckDB reads
// every row back, each value in its column.
func TestEventFileRowGroups(t *testing.T) {
	s := openTest(t, Options{})
	const n = 2*eventFileGroupRows + 100
	t0 := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	f, err := writeEventFile(t.TempDir(), func(fn func(row []driver.Value) error) error {
		row := make([]driver.Value, eventCols)
		for i := range n {
			clear(row)
			row[colID] = uint64(i + 1)
			row[1] = t0.Add(time.Duration(i) * time.Millisecond)
			row[2] = t0
			row[3] = fmt.Sprintf("host-%d", i%7)
			row[4] = "syslog-tcp"
			row[5] = fmt.Sprintf("message %d", i)
			if i%3 == 0 {
				row[8] = int32(i % 65536)
			}
			row[eventCols-1] = int32(0)
			if err := fn(row); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if f.rows != n || f.first != 1 || f.last != n || f.minTS != t0.UnixMicro() || f.maxTS != t0.Add((n-1)*time.Millisecond).UnixMicro() {
		t.Fatalf("file %+v", *f)
	}
	pf, err := os.Open(f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	st, err := pf.Stat()
	if err != nil {
		t.Fatal(err)
	}
	meta, err := parquet.OpenFile(pf, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	var groups []int64
	for _, rg := range meta.RowGroups() {
		groups = append(groups, rg.NumRows())
	}
	if want := []int64{eventFileGroupRows, eventFileGroupRows, 100}; !slices.Equal(groups, want) {
		t.Errorf("row groups of %v rows, want %v", groups, want)
	}
	var rows, badMsg, badHost, ports int
	q := `SELECT count(*), count(*) FILTER (WHERE message <> 'message ' || (id - 1)),
		count(*) FILTER (WHERE host <> 'host-' || ((id - 1) % 7)), count(source_port)
		FROM read_parquet(` + sqlString(f.path) + `)`
	if err := s.db.QueryRow(q).Scan(&rows, &badMsg, &badHost, &ports); err != nil {
		t.Fatal(err)
	}
	if rows != n || badMsg != 0 || badHost != 0 || ports != (n+2)/3 {
		t.Errorf("read back %d rows (want %d), %d wrong messages, %d wrong hosts, %d ports (want %d)", rows, n, badMsg, badHost, ports, (n+2)/3)
	}
}
