package eventstore

import (
	"bufio"
	"bytes"
	"cmp"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/klauspost/compress/s2"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// Event files: where a file-backed store keeps its log events.
//
// The loader writes each journal segment as one Parquet file, from Go,
// instead of appending its rows to the DuckDB events table: DuckDB's own
// append of these rows (25 columns, some 600 bytes, a JSON column) costs
// 10-12 µs of CPU a row on the machines measured, 17-20 with its
// checkpoints, while encoding the same rows as Parquet costs 3-4 µs
// (docs/BENCHMARKS.md). DuckDB reads the files with every column typed,
// with each file's row-group min/max pruning time and id ranges, so a query
// reads the events table and the files as one relation (eventsFrom).
//
// A file is named for what the index needs without opening it: its first
// and last id, its oldest and newest event time (µs) and its row count.
// It is written to a temporary name, synced, renamed and its directory
// synced before the journal segment it came from is deleted, so an event
// is always in the journal or in a complete file (a crash between the two
// replays the segment, which skips the ids the files hold). Files are
// never changed: a merge or a retention rewrite writes a new file and
// deletes the old ones once no running query reads them. At Open a file
// whose id range lies within another's is what a crash left of such a
// change, and is deleted (of two with the same range, the one with fewer
// rows is the retention rewrite, and wins).
//
// The events table still holds what was stored before files existed,
// and every event of an in-memory store.

// eventFilesExt is the extension of an event file; tmpExt that of one
// being written.
const (
	eventFilesExt = ".parquet"
	tmpExt        = ".tmp"
)

// DefaultMergeRows is the size up to which the loader merges event files:
// runs of consecutive smaller files are rewritten as one of up to this
// many rows, when it has nothing to load. Each event is merged about once
// (segments of LoadRows make files of MergeRows), which keeps the number
// of files a long retention holds in the hundreds to thousands.
const DefaultMergeRows = 16 * DefaultLoadRows

// minMergeFiles is how many small files a merge takes at least, unless
// they already add up to half of MergeRows.
const minMergeFiles = 16

// eventColNames are the events table's columns in table order: the order
// of a journal row.
var eventColNames = [eventCols]string{"id", "ts", "received", "host", "input", "message",
	"source_ip", "source_ip_key", "source_port", "destination_ip", "destination_ip_key",
	"user_name", "process_name", "event_action", "event_outcome", "event_category",
	"http_status", "url_path", "fields", "raw", "parse_error",
	"message_from_raw", "source_ip_hash", "destination_ip_hash", "packed"}

// eventFileSchema types each column as the events table does, so that a
// UNION ALL BY NAME of the two needs no cast (a cast would keep DuckDB
// from pruning files by their min/max). Low-cardinality strings are
// dictionary-encoded.
var eventFileSchema, eventFileCols = func() (*parquet.Schema, [eventCols]fileCol) {
	str := func() parquet.Node { return parquet.Optional(parquet.String()) }
	dict := func() parquet.Node {
		return parquet.Optional(parquet.Encoded(parquet.String(), &parquet.RLEDictionary))
	}
	blob := func() parquet.Node { return parquet.Optional(parquet.Leaf(parquet.ByteArrayType)) }
	i32 := func() parquet.Node { return parquet.Optional(parquet.Int(32)) }
	i64 := func() parquet.Node { return parquet.Optional(parquet.Int(64)) }
	ts := func() parquet.Node { return parquet.TimestampAdjusted(parquet.Microsecond, false) }
	g := parquet.Group{
		"id": parquet.Uint(64), "ts": ts(), "received": ts(),
		"host": dict(), "input": dict(), "message": str(),
		"source_ip": str(), "source_ip_key": blob(), "source_port": i32(),
		"destination_ip": str(), "destination_ip_key": blob(),
		"user_name": dict(), "process_name": dict(), "event_action": dict(),
		"event_outcome": dict(), "event_category": dict(),
		"http_status": i32(), "url_path": str(), "fields": str(), "raw": str(), "parse_error": str(),
		"message_from_raw": parquet.Optional(parquet.Leaf(parquet.BooleanType)),
		"source_ip_hash":   i64(), "destination_ip_hash": i64(), "packed": i32(),
	}
	schema := parquet.NewSchema("event", g)
	var cols [eventCols]fileCol
	for i, name := range eventColNames {
		leaf, ok := schema.Lookup(name)
		if !ok {
			panic("eventstore: event file schema lacks " + name)
		}
		cols[i] = fileCol{index: leaf.ColumnIndex, optional: leaf.MaxDefinitionLevel > 0}
	}
	return schema, cols
}()

// eventFileGroupRows is the most rows a row group of an event file holds.
const eventFileGroupRows = 2 * DefaultLoadRows

// eventFileOptions configure the writer of event files. The columns that
// searches and pivots compare for equality get a Bloom filter in each row
// group (10 bits a value, about 1 % false positives), which DuckDB checks
// before it reads the row group: a field query for one address over 10M
// events fetches the columns of the row groups that may hold it, not of
// every row group whose hash column it scans (159 against 265 ms,
// docs/BENCHMARKS.md).
var eventFileOptions = []parquet.WriterOption{
	eventFileSchema,
	parquet.Compression(&fastSnappy{}),
	// A segment is one row group; a rewrite of many small files is cut
	// into row groups of this size, so that the writer never holds more.
	// (writeEventFile, which writes to the column writers, cuts its row
	// groups at the same size itself: this option only bounds WriteRows.)
	parquet.MaxRowsPerRowGroup(eventFileGroupRows),
	// The long texts are searched for words and phrases, which no
	// minimum or maximum can rule out, so their pages and chunks go
	// without bounds (the null counts stay): comparing their values took
	// 3 % of the loader's CPU (StageLoad/files).
	parquet.SkipPageStatistics("message"),
	parquet.SkipPageStatistics("fields"),
	parquet.SkipPageStatistics("raw"),
	parquet.SkipPageBounds("message"),
	parquet.SkipPageBounds("fields"),
	parquet.SkipPageBounds("raw"),
	parquet.BloomFilters(
		parquet.SplitBlockFilter(10, "source_ip_hash"),
		parquet.SplitBlockFilter(10, "destination_ip_hash"),
		parquet.SplitBlockFilter(10, "user_name"),
		parquet.SplitBlockFilter(10, "host"),
	),
}

// fastSnappy is the Snappy codec with the faster of klauspost/compress's
// two Snappy encoders: parquet-go's codec uses the "better" one, which was
// a fifth of the loader's CPU for files 4 % smaller.
type fastSnappy struct{ snappy.Codec }

func (*fastSnappy) Encode(dst, src []byte) ([]byte, error) { return s2.EncodeSnappy(dst, src), nil }

// fileCol is where a table column goes in an event file's rows.
type fileCol struct {
	index    int
	optional bool
}

// eventFile is one file of the index.
type eventFile struct {
	first, last  uint64 // id range (every id of the file is in it)
	minTS, maxTS int64  // event time range, µs
	rows, bytes  int64
	path         string
	// refs counts the running queries that read the file; guarded by
	// eventFiles.mu. A file removed from the index (gone) is deleted
	// when the last of them ends.
	refs int
	gone bool
}

func eventFileName(first, last uint64, minTS, maxTS, rows int64) string {
	return fmt.Sprintf("%020d-%020d_%d_%d_%d%s", first, last, minTS, maxTS, rows, eventFilesExt)
}

// parseEventFileName reads what eventFileName wrote.
func parseEventFileName(name string) (eventFile, bool) {
	base, ok := strings.CutSuffix(name, eventFilesExt)
	if !ok {
		return eventFile{}, false
	}
	ids, rest, ok := strings.Cut(base, "_")
	if !ok {
		return eventFile{}, false
	}
	a, b, ok := strings.Cut(ids, "-")
	if !ok {
		return eventFile{}, false
	}
	parts := strings.Split(rest, "_")
	if len(parts) != 3 {
		return eventFile{}, false
	}
	var f eventFile
	var errs [5]error
	f.first, errs[0] = strconv.ParseUint(a, 10, 64)
	f.last, errs[1] = strconv.ParseUint(b, 10, 64)
	f.minTS, errs[2] = strconv.ParseInt(parts[0], 10, 64)
	f.maxTS, errs[3] = strconv.ParseInt(parts[1], 10, 64)
	f.rows, errs[4] = strconv.ParseInt(parts[2], 10, 64)
	if errors.Join(errs[:]...) != nil || f.first > f.last || f.minTS > f.maxTS || f.rows <= 0 {
		return eventFile{}, false
	}
	return f, true
}

// writeRecords writes the rows of journal record payloads (rows of cols
// values) with an id above afterID as one event file in dir (see
// writeEventFile).
func writeRecords(dir string, recs [][]byte, cols int, afterID uint64) (*eventFile, error) {
	return writeEventFile(dir, func(fn func(row []driver.Value) error) error {
		for _, rec := range recs {
			err := eachRowCols(rec, cols, false, nil, func(row []driver.Value) error {
				if id, _ := row[colID].(uint64); id <= afterID {
					return nil
				}
				return fn(row)
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// writeEventFile writes the rows each gives (rows of the events table, in
// id order; each row is used only during the call) as one event file in
// dir, durably (see the top of this file). It returns nil when there is no
// row.
func writeEventFile(dir string, each func(fn func(row []driver.Value) error) error) (*eventFile, error) {
	tmp, err := createTemp(dir, "write")
	if err != nil {
		return nil, fmt.Errorf("event file: %w", err)
	}
	defer tmp.discard()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	w := parquet.NewWriter(bw, eventFileOptions...)
	f := eventFile{minTS: math.MaxInt64, maxTS: math.MinInt64}
	// Rows are written column by column, batch rows at a time, straight
	// into each column's writer: parquet-go's WriteRows would take the
	// same values row by row and sort them into columns (Row.Range), and
	// it too writes 64 rows at a time, so that a page overshoots its
	// buffer by at most that many values.
	const batch = 64
	var (
		vals    = make([]parquet.Value, batch*eventCols)
		n       int // rows in vals
		inGroup int // rows in the writer's current row group
	)
	flush := func() error {
		if n == 0 {
			return nil
		}
		for c, cw := range w.ColumnWriters() {
			if _, err := cw.WriteRowValues(vals[c*batch : c*batch+n]); err != nil {
				return err
			}
		}
		inGroup += n
		n = 0
		if inGroup >= eventFileGroupRows {
			inGroup = 0
			return w.Flush()
		}
		return nil
	}
	err = each(func(row []driver.Value) error {
		id, _ := row[colID].(uint64)
		for c, v := range row {
			col := eventFileCols[c]
			vals[col.index*batch+n] = fileValue(v, col)
		}
		n++
		ts := row[1].(time.Time).UnixMicro()
		f.minTS, f.maxTS = min(f.minTS, ts), max(f.maxTS, ts)
		if f.rows == 0 {
			f.first = id
		}
		f.last = id
		f.rows++
		if n == batch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("event file: %w", err)
	}
	if err := flush(); err != nil {
		return nil, fmt.Errorf("event file: %w", err)
	}
	if f.rows == 0 {
		return nil, nil
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("event file: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("event file: %w", err)
	}
	if err := tmp.finish(&f); err != nil {
		return nil, err
	}
	return &f, nil
}

// tempFile is an event file being written under a temporary name in dir.
type tempFile struct {
	*os.File
	dir  string
	done bool
}

func createTemp(dir, kind string) (*tempFile, error) {
	f, err := os.CreateTemp(dir, kind+"-*"+eventFilesExt+tmpExt)
	if err != nil {
		return nil, err
	}
	return &tempFile{File: f, dir: dir}, nil
}

// discard deletes the file unless finish renamed it.
func (t *tempFile) discard() {
	if !t.done {
		t.Close()
		os.Remove(t.Name())
	}
}

// finish syncs and closes the written file, renames it to f's name and
// syncs the directory; it sets f.path and f.bytes.
func (t *tempFile) finish(f *eventFile) error {
	st, err := t.Stat()
	if err == nil {
		err = t.Sync()
	}
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("event file: %w", err)
	}
	f.bytes = st.Size()
	f.path = filepath.Join(t.dir, eventFileName(f.first, f.last, f.minTS, f.maxTS, f.rows))
	if err := os.Rename(t.Name(), f.path); err != nil {
		return fmt.Errorf("event file: %w", err)
	}
	t.done = true
	if err := syncDir(t.dir); err != nil {
		return fmt.Errorf("event file: %w", err)
	}
	return nil
}

// fileValue converts a journal row's value to a Parquet value of column c.
// Strings are not copied: the writer copies them into its pages.
func fileValue(v driver.Value, c fileCol) parquet.Value {
	def := 0
	if c.optional {
		def = 1
	}
	var pv parquet.Value
	switch x := v.(type) {
	case nil:
		return parquet.NullValue().Level(0, 0, c.index)
	case uint64:
		pv = parquet.Int64Value(int64(x))
	case time.Time:
		pv = parquet.Int64Value(x.UnixMicro())
	case string:
		pv = parquet.ByteArrayValue(unsafe.Slice(unsafe.StringData(x), len(x)))
	case []byte:
		pv = parquet.ByteArrayValue(x)
	case int32:
		pv = parquet.Int32Value(x)
	case int64:
		pv = parquet.Int64Value(x)
	case bool:
		pv = parquet.BooleanValue(x)
	default:
		panic(fmt.Sprintf("eventstore: event file: unexpected %T", v))
	}
	return pv.Level(0, def, c.index)
}

// eventFiles is the index of a store's event files, ordered by first id.
type eventFiles struct {
	dir string
	log *slog.Logger

	mu    sync.Mutex
	files []*eventFile
	// changeMu serialises the changes that replace files (merge,
	// retention); the loader's additions need only mu.
	changeMu sync.Mutex
}

// openEventFiles reads dir's event files into an index, creating dir,
// and deletes what a crash left: temporary files and files whose id range
// lies within another's. A file that does not begin and end as a Parquet
// file does (damaged on disk: every file was synced before it was
// indexed) is renamed with damagedExt and left out, so that it cannot
// fail every query that reads it; lost counts its events.
func openEventFiles(dir string, log *slog.Logger) (fs *eventFiles, lost int64, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, 0, fmt.Errorf("event files: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("event files: %w", err)
	}
	fs = &eventFiles{dir: dir, log: log}
	var found []*eventFile
	for _, e := range ents {
		name := e.Name()
		path := filepath.Join(dir, name)
		if strings.HasSuffix(name, tmpExt) {
			if err := removeFile(path); err != nil {
				return nil, 0, err
			}
			continue
		}
		f, ok := parseEventFileName(name)
		if !ok {
			if !strings.HasSuffix(name, damagedExt) {
				log.Warn("ignoring a file that is not an event file in the event files' directory", "path", path)
			}
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, 0, fmt.Errorf("event files: %w", err)
		}
		f.path, f.bytes = path, info.Size()
		if err := checkParquetEnds(path, f.bytes); err != nil {
			kept := path + damagedExt
			if rerr := os.Rename(path, kept); rerr != nil {
				return nil, 0, fmt.Errorf("event files: set aside damaged %s: %w", path, rerr)
			}
			log.Error("event file damaged on disk: its events are lost", "path", path, "kept_as", kept, "events_lost", f.rows, "err", err)
			lost += f.rows
			continue
		}
		found = append(found, &f)
	}
	// Widest range first among those that start together; of equal
	// ranges, fewest rows first (a retention rewrite).
	slices.SortFunc(found, func(a, b *eventFile) int {
		if a.first != b.first {
			return cmp.Compare(a.first, b.first)
		}
		if a.last != b.last {
			return cmp.Compare(b.last, a.last)
		}
		return int(a.rows - b.rows)
	})
	for _, f := range found {
		if n := len(fs.files); n > 0 && f.last <= fs.files[n-1].last {
			log.Info("deleting an event file that a later file replaced (an interrupted merge or retention)", "path", f.path)
			if err := removeFile(f.path); err != nil {
				return nil, 0, err
			}
			continue
		}
		fs.files = append(fs.files, f)
	}
	return fs, lost, nil
}

// checkParquetEnds checks that the file at path, size bytes long, begins
// and ends as a Parquet file does (footerStart).
func checkParquetEnds(path string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = footerStart(f, size)
	return err
}

// footerStart checks that f, size bytes long, begins and ends with the
// Parquet magic and that its footer length fits, and returns the offset
// where the footer starts.
func footerStart(f *os.File, size int64) (int64, error) {
	if size < 12 {
		return 0, fmt.Errorf("%d bytes is too short for a Parquet file", size)
	}
	var head [4]byte
	var tail [8]byte
	if _, err := f.ReadAt(head[:], 0); err != nil {
		return 0, err
	}
	if _, err := f.ReadAt(tail[:], size-8); err != nil {
		return 0, err
	}
	if string(head[:]) != parquetMagic || string(tail[4:]) != parquetMagic {
		return 0, errors.New("no Parquet magic at its start or end")
	}
	n := int64(binary.LittleEndian.Uint32(tail[:4]))
	if n > size-12 {
		return 0, fmt.Errorf("footer length %d exceeds the file", n)
	}
	return size - 8 - n, nil
}

// add puts a new file into the index.
func (fs *eventFiles) add(f *eventFile) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.insertLocked(f)
}

func (fs *eventFiles) insertLocked(f *eventFile) {
	i, _ := slices.BinarySearchFunc(fs.files, f.first, func(e *eventFile, id uint64) int { return cmp.Compare(e.first, id) })
	fs.files = slices.Insert(fs.files, i, f)
}

// fileScope bounds the files a query reads: event times in [lo, hi] (µs)
// and, when ids is set, files holding one of ids.
type fileScope struct {
	lo, hi int64
	ids    []uint64
}

var allFiles = fileScope{lo: math.MinInt64, hi: math.MaxInt64}

// scopeTime is the scope of the event times [from, to); zero is unbounded.
func scopeTime(from, to time.Time) fileScope {
	sc := allFiles
	if !from.IsZero() {
		sc.lo = from.UnixMicro()
	}
	if !to.IsZero() {
		sc.hi = to.UnixMicro() - 1
	}
	return sc
}

func (f *eventFile) in(sc fileScope) bool {
	if f.maxTS < sc.lo || f.minTS > sc.hi {
		return false
	}
	if sc.ids == nil {
		return true
	}
	for _, id := range sc.ids {
		if id >= f.first && id <= f.last {
			return true
		}
	}
	return false
}

// acquire returns the files in scope, which stay on disk until release.
func (fs *eventFiles) acquire(sc fileScope) []*eventFile {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var out []*eventFile
	for _, f := range fs.files {
		if f.in(sc) {
			f.refs++
			out = append(out, f)
		}
	}
	return out
}

func (fs *eventFiles) release(files []*eventFile) {
	fs.mu.Lock()
	var del []string
	for _, f := range files {
		f.refs--
		if f.refs == 0 && f.gone {
			del = append(del, f.path)
		}
	}
	fs.mu.Unlock()
	fs.remove(del)
}

// replace takes old out of the index and puts nf (if any) in their
// place in one step, so that a query sees either; each of old is deleted
// once no query reads it.
func (fs *eventFiles) replace(old []*eventFile, nf *eventFile) {
	fs.mu.Lock()
	var del []string
	fs.files = slices.DeleteFunc(fs.files, func(f *eventFile) bool { return slices.Contains(old, f) })
	for _, f := range old {
		f.gone = true
		if f.refs == 0 {
			del = append(del, f.path)
		}
	}
	if nf != nil {
		fs.insertLocked(nf)
	}
	fs.mu.Unlock()
	fs.remove(del)
}

func (fs *eventFiles) remove(paths []string) {
	for _, p := range paths {
		if err := removeFile(p); err != nil {
			fs.log.Warn("could not delete a replaced event file; it is deleted at the next start", "path", p, "err", err)
		}
	}
}

// snapshot returns a copy of the index (no references taken).
func (fs *eventFiles) snapshot() []eventFile {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := make([]eventFile, len(fs.files))
	for i, f := range fs.files {
		out[i] = *f
	}
	return out
}

// totals sums the index: files, rows, bytes, the time range (ok false
// when there is no file) and the last id.
func (fs *eventFiles) totals() (n int, rows, bytes int64, minTS, maxTS int64, lastID uint64) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	minTS, maxTS = math.MaxInt64, math.MinInt64
	for _, f := range fs.files {
		rows += f.rows
		bytes += f.bytes
		minTS, maxTS = min(minTS, f.minTS), max(maxTS, f.maxTS)
		lastID = max(lastID, f.last)
	}
	return len(fs.files), rows, bytes, minTS, maxTS, lastID
}

// EventFiles is the number of event files and their bytes (0, 0 for an
// in-memory store).
func (s *Store) EventFiles() (files int, bytes int64) {
	if s.ev.files == nil {
		return 0, 0
	}
	n, _, b, _, _, _ := s.ev.files.totals()
	return n, b
}

// sqlString quotes s as a SQL string literal.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// fileList is the SQL list literal of files' paths.
func fileList(files []*eventFile) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, f := range files {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(sqlString(f.path))
	}
	b.WriteByte(']')
	return b.String()
}

// eventsFrom returns the relation a query of events in scope reads: the
// events table, united with the event files in scope, and the function
// that releases those files once the query's rows are closed.
func (s *Store) eventsFrom(sc fileScope) (string, func()) {
	if s.ev.files == nil {
		return "events", func() {}
	}
	files := s.ev.files.acquire(sc)
	if len(files) == 0 {
		return "events", func() {}
	}
	rel := "(SELECT * FROM events UNION ALL BY NAME SELECT * FROM read_parquet(" + fileList(files) + "))"
	return rel, func() { s.ev.files.release(files) }
}

// mergeFiles writes the row groups of files (consecutive in the index) as
// one new file, copying their bytes as they are: no row is decoded, so a
// merge costs I/O, not CPU (copy_file_range on Linux). Only the footer is
// new: the row groups' offsets shifted to their new place. The page
// indexes are dropped, as their page offsets would need the same shift;
// DuckDB prunes by the row groups' statistics.
func mergeFiles(dir string, files []*eventFile) (*eventFile, error) {
	tmp, err := createTemp(dir, "merge")
	if err != nil {
		return nil, fmt.Errorf("merge event files: %w", err)
	}
	defer tmp.discard()
	if _, err := tmp.WriteString(parquetMagic); err != nil {
		return nil, fmt.Errorf("merge event files: %w", err)
	}
	off := int64(len(parquetMagic))
	nf := eventFile{first: files[0].first, last: files[len(files)-1].last, minTS: math.MaxInt64, maxTS: math.MinInt64}
	var md format.FileMetaData
	for i, f := range files {
		fmd, dataEnd, err := appendRowGroups(tmp.File, f.path)
		if err != nil {
			return nil, fmt.Errorf("merge event files: %s: %w", f.path, err)
		}
		if i == 0 {
			md = fmd
			md.RowGroups, md.NumRows = nil, 0
		} else if !sameSchema(md.Schema, fmd.Schema) {
			return nil, fmt.Errorf("merge event files: %s: its schema differs from %s's", f.path, files[0].path)
		}
		delta := off - int64(len(parquetMagic))
		for _, rg := range fmd.RowGroups {
			shiftRowGroup(&rg, delta)
			rg.Ordinal = int16(len(md.RowGroups))
			md.RowGroups = append(md.RowGroups, rg)
			md.NumRows += rg.NumRows
		}
		off += dataEnd - int64(len(parquetMagic))
		nf.rows += f.rows
		nf.minTS, nf.maxTS = min(nf.minTS, f.minTS), max(nf.maxTS, f.maxTS)
	}
	if md.NumRows != nf.rows {
		return nil, fmt.Errorf("merge event files: the files hold %d rows, their names say %d", md.NumRows, nf.rows)
	}
	footer, err := thrift.Marshal(new(thrift.CompactProtocol), &md)
	if err != nil {
		return nil, fmt.Errorf("merge event files: footer: %w", err)
	}
	footer = binary.LittleEndian.AppendUint32(footer, uint32(len(footer)))
	footer = append(footer, parquetMagic...)
	if _, err := tmp.Write(footer); err != nil {
		return nil, fmt.Errorf("merge event files: %w", err)
	}
	if err := tmp.finish(&nf); err != nil {
		return nil, err
	}
	return &nf, nil
}

const parquetMagic = "PAR1"

// appendRowGroups copies the row groups of the Parquet file at path (its
// bytes from after the leading magic to the footer) to the end of w, and
// returns the file's metadata and the offset where its footer starts.
func appendRowGroups(w *os.File, path string) (format.FileMetaData, int64, error) {
	var md format.FileMetaData
	in, err := os.Open(path)
	if err != nil {
		return md, 0, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return md, 0, err
	}
	size := st.Size()
	dataEnd, err := footerStart(in, size)
	if err != nil {
		return md, 0, err
	}
	footer := make([]byte, size-8-dataEnd)
	if _, err := in.ReadAt(footer, dataEnd); err != nil {
		return md, 0, err
	}
	if err := thrift.Unmarshal(new(thrift.CompactProtocol), footer, &md); err != nil {
		return md, 0, fmt.Errorf("footer: %w", err)
	}
	if _, err := in.Seek(int64(len(parquetMagic)), io.SeekStart); err != nil {
		return md, 0, err
	}
	n, err := w.ReadFrom(&io.LimitedReader{R: in, N: dataEnd - int64(len(parquetMagic))})
	if err == nil && n != dataEnd-int64(len(parquetMagic)) {
		err = io.ErrUnexpectedEOF
	}
	return md, dataEnd, err
}

// shiftRowGroup moves a row group's offsets by delta bytes and drops its
// page index (see mergeFiles).
func shiftRowGroup(rg *format.RowGroup, delta int64) {
	if rg.FileOffset != 0 {
		rg.FileOffset += delta
	}
	for j := range rg.Columns {
		c := &rg.Columns[j]
		c.FileOffset += delta
		m := &c.MetaData
		m.DataPageOffset += delta
		for _, p := range []*int64{&m.IndexPageOffset, &m.DictionaryPageOffset, &m.BloomFilterOffset} {
			if *p != 0 {
				*p += delta
			}
		}
		c.ColumnIndexOffset, c.ColumnIndexLength = 0, 0
		c.OffsetIndexOffset, c.OffsetIndexLength = 0, 0
	}
}

func sameSchema(a, b []format.SchemaElement) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Type != b[i].Type || a[i].NumChildren != b[i].NumChildren ||
			a[i].RepetitionType != b[i].RepetitionType {
			return false
		}
	}
	return true
}

// pickMerge returns the oldest run of consecutive files worth merging:
// each smaller than mergeRows, together at most mergeRows, and either at
// least minMergeFiles of them or at least half of mergeRows; nil if none.
func pickMerge(files []*eventFile, mergeRows int64) []*eventFile {
	var (
		run []*eventFile
		sum int64
	)
	due := func() bool { return len(run) >= 2 && (len(run) >= minMergeFiles || sum >= mergeRows/2) }
	for _, f := range files {
		if f.rows >= mergeRows {
			if due() {
				return run
			}
			run, sum = run[:0], 0
			continue
		}
		if sum+f.rows > mergeRows {
			if due() {
				return run
			}
			// Start again from f, dropping the run's oldest files until
			// it fits.
			for len(run) > 0 && sum+f.rows > mergeRows {
				sum -= run[0].rows
				run = run[1:]
			}
		}
		run = append(run, f)
		sum += f.rows
	}
	if due() {
		return run
	}
	return nil
}

// rewriteFiles writes the rows of files (consecutive in the index) that
// drop (if set) does not select as one new file, decoding and encoding
// them: retention of a file that holds events on both sides of its cut,
// and merges of files whose row groups are small (mergeOnce). It returns
// nil when drop selects every row, and how many rows it dropped.
func rewriteFiles(dir string, files []*eventFile, drop func(id uint64, ts int64) bool) (*eventFile, int64, error) {
	tmp, err := createTemp(dir, "rewrite")
	if err != nil {
		return nil, 0, fmt.Errorf("rewrite event files: %w", err)
	}
	defer tmp.discard()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	w := parquet.NewWriter(bw, eventFileOptions...)
	nf := eventFile{first: files[0].first, last: files[len(files)-1].last, minTS: math.MaxInt64, maxTS: math.MinInt64}
	var dropped int64
	for _, f := range files {
		n, err := copyRows(w, f.path, func(id uint64, ts int64) bool {
			if drop != nil && drop(id, ts) {
				dropped++
				return false
			}
			nf.minTS, nf.maxTS = min(nf.minTS, ts), max(nf.maxTS, ts)
			return true
		})
		if err != nil {
			return nil, 0, fmt.Errorf("rewrite event files: %s: %w", f.path, err)
		}
		nf.rows += n
	}
	if nf.rows == 0 {
		return nil, dropped, nil
	}
	if err := w.Close(); err != nil {
		return nil, 0, fmt.Errorf("rewrite event files: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return nil, 0, fmt.Errorf("rewrite event files: %w", err)
	}
	if err := tmp.finish(&nf); err != nil {
		return nil, 0, err
	}
	return &nf, dropped, nil
}

// copyRows writes the rows of the event file at path that keep selects to
// w and returns how many it wrote.
func copyRows(w *parquet.Writer, path string, keep func(id uint64, ts int64) bool) (int64, error) {
	in, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return 0, err
	}
	pf, err := parquet.OpenFile(in, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return 0, err
	}
	if !sameSchema(pf.Metadata().Schema, eventFileFormat) {
		return 0, errors.New("not an event file's schema")
	}
	r := parquet.NewReader(pf)
	defer r.Close()
	idc, tsc := eventFileCols[colID].index, eventFileCols[1].index
	var n int64
	buf := make([]parquet.Row, 256)
	for {
		got, rerr := r.ReadRows(buf)
		kept := buf[:0]
		for _, row := range buf[:got] {
			var id uint64
			var ts int64
			for _, v := range row {
				switch v.Column() {
				case idc:
					id = uint64(v.Int64())
				case tsc:
					ts = v.Int64()
				}
			}
			if keep(id, ts) {
				kept = append(kept, row)
			}
		}
		if _, err := w.WriteRows(kept); err != nil {
			return n, err
		}
		n += int64(len(kept))
		if errors.Is(rerr, io.EOF) {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// eventFileFormat is eventFileSchema as a file's metadata states it.
var eventFileFormat = func() []format.SchemaElement {
	var buf bytes.Buffer
	w := parquet.NewWriter(&buf, eventFileSchema)
	if err := w.Close(); err != nil {
		panic(err)
	}
	pf, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		panic(err)
	}
	return pf.Metadata().Schema
}()
