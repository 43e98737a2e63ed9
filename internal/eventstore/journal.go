package eventstore

import (
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// The event journal makes appended events durable before they reach
// DuckDB. DuckDB's append costs about 10 µs of CPU per event, and with the
// acknowledgement waiting for it every syslog connection waited for
// DuckDB, one flush at a time. So AppendEvents writes each group commit as
// one record to an append-only journal file and fsyncs it — then the rows
// are durable and the call returns — and a loader goroutine moves them
// into DuckDB in chunks (events_load.go), on the other core, while the
// readers parse and detection runs. Every read of the events table first
// loads what is pending, so searches always see every acknowledged event.
//
// The journal is a directory of segment files, <db>.journal/<seq>.evj. The
// loader starts a new segment when it takes the pending rows, so a segment
// holds exactly the rows of one load; once they are committed in DuckDB
// the segment is deleted. After a crash, Open replays every segment's rows
// whose id DuckDB does not have yet, then deletes the segments.
//
// A record is: payload length (uint32 LE), CRC-32C of the payload (uint32
// LE), payload. The payload is the row count (uvarint) followed by each
// row's eventCols values, each a tag byte and its data. A record cut short
// by a crash (it was never acknowledged: the fsync did not return) fails
// its length or checksum and ends the replay of its segment, which is
// always the last one.

// journalExt names segments whose rows have eventCols values.
// legacyJournalExt names those of builds before the packed column
// (migration 5), whose rows have legacyEventCols values; Open still
// replays them, with packed 0 (everything spelt out).
const (
	journalExt       = ".ev2"
	legacyJournalExt = ".evj"
	legacyEventCols  = eventCols - 1
)

// damagedExt is appended to the name of a spilled segment that the loader
// found damaged when it read it back: kept for inspection, never replayed.
const damagedExt = ".damaged"

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Value tags of the journal encoding.
const (
	tagNil byte = iota
	tagString
	tagUint64
	tagInt64
	tagInt32
	tagTime
	tagTrue
	tagFalse
	tagBytes
	// tagID is an id as 8 bytes little-endian: a fixed size, so that
	// rows can be encoded before their ids are assigned (putID).
	tagID
)

// journal is the open journal; the caller of its methods holds
// eventWriter.commitMu.
type journal struct {
	dir  string // "" for an in-memory store: nothing is written
	f    *os.File
	seq  uint64
	size int64 // bytes of intact records in f
}

func segmentPath(dir string, seq uint64) string {
	return segmentPathExt(dir, seq, journalExt)
}

func segmentPathExt(dir string, seq uint64, ext string) string {
	return filepath.Join(dir, fmt.Sprintf("%016d%s", seq, ext))
}

// segments lists the segment numbers in dir, oldest first.
func segments(dir string) ([]uint64, error) { return segmentsExt(dir, journalExt) }

// segmentsExt lists the numbers of the segments in dir with extension
// ext, oldest first.
func segmentsExt(dir, ext string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ext)
		if !ok || e.IsDir() {
			continue
		}
		n, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("journal %s: unexpected file %q", dir, e.Name())
		}
		seqs = append(seqs, n)
	}
	slices.Sort(seqs)
	return seqs, nil
}

// open starts a new segment after the highest existing one.
func (j *journal) open(next uint64) error {
	if j.dir == "" {
		j.seq = next
		return nil
	}
	f, err := os.OpenFile(segmentPath(j.dir, next), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := syncDir(j.dir); err != nil {
		f.Close()
		return err
	}
	j.f, j.seq, j.size = f, next, 0
	return nil
}

// rotate starts the next segment and closes the current one; it returns
// the closed segment's number. On error the current segment stays open.
func (j *journal) rotate() (uint64, error) {
	old, oldf := j.seq, j.f
	if err := j.open(old + 1); err != nil {
		return 0, err
	}
	if oldf != nil {
		// Every record in it was synced when committed.
		_ = oldf.Close()
	}
	return old, nil
}

// commit appends one record holding n rows, encoded in parts (rows
// concatenated), and makes it durable. It returns the record's payload,
// which the caller keeps (the loader's copy of the rows; an in-memory
// store builds it without writing): every record has its own buffer.
func (j *journal) commit(n int, parts [][]byte) ([]byte, error) {
	size := 8 + binary.MaxVarintLen64
	for _, p := range parts {
		size += len(p)
	}
	b := make([]byte, 8, size)
	b = binary.AppendUvarint(b, uint64(n))
	for _, p := range parts {
		b = append(b, p...)
	}
	payload := b[8:]
	if len(payload) > math.MaxUint32 {
		return nil, fmt.Errorf("journal: record of %d bytes is too large", len(payload))
	}
	binary.LittleEndian.PutUint32(b[0:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(payload, crcTable))
	if j.dir == "" {
		return payload, nil
	}
	if err := j.write(b); err != nil {
		// Cut off what may have been written, so that later records do
		// not follow a damaged one (a replay stops at the first).
		if terr := j.f.Truncate(j.size); terr != nil {
			if _, rerr := j.rotate(); rerr != nil {
				return nil, errors.Join(err, terr, rerr)
			}
		}
		return nil, err
	}
	j.size += int64(len(b))
	return payload, nil
}

func (j *journal) write(b []byte) error {
	if j.f == nil {
		return errors.New("journal: no open segment")
	}
	if _, err := j.f.Write(b); err != nil {
		return fmt.Errorf("journal: write: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal: sync: %w", err)
	}
	return nil
}

func (j *journal) close() error {
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}

func removeSegment(dir string, seq uint64) error {
	if dir == "" {
		return nil
	}
	return removeFile(segmentPath(dir, seq))
}

func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("journal: sync %s: %w", dir, err)
	}
	return nil
}

// errTorn marks a record cut short or damaged: the end of what was
// durably written.
var errTorn = errors.New("torn record")

// decodeRecord decodes one record's payload, rows of cols values
// (eventCols, or legacyEventCols for a legacy segment), into rows of
// eventCols values.
func decodeRecord(p []byte, cols int) ([][]driver.Value, error) {
	var rows [][]driver.Value
	var vals []driver.Value
	err := eachRowCols(p, cols, true, func(n int) {
		rows = make([][]driver.Value, 0, n)
		vals = make([]driver.Value, n*eventCols)
	}, func(row []driver.Value) error {
		r := vals[:eventCols:eventCols]
		vals = vals[eventCols:]
		copy(r, row)
		rows = append(rows, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// eachRow decodes a record's payload row by row into one reused row and
// calls fn with it; start, if not nil, first gets the row count. Without
// own, strings and byte slices alias p and every value of the row is
// reused for the next one (rowBoxes): fn must be done with them when it
// returns (the loader hands them to DuckDB's appender, which copies).
func eachRow(p []byte, own bool, start func(n int), fn func(row []driver.Value) error) error {
	return eachRowCols(p, eventCols, own, start, fn)
}

// eachRowCols is eachRow for rows encoded with cols values; a legacy row
// (legacyEventCols) gets packed 0.
func eachRowCols(p []byte, cols int, own bool, start func(n int), fn func(row []driver.Value) error) error {
	n, k := binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)) {
		return errTorn
	}
	p = p[k:]
	if start != nil {
		start(int(n))
	}
	row := make([]driver.Value, eventCols)
	for c := cols; c < eventCols; c++ {
		row[c] = int32(0)
	}
	var bx *rowBoxes
	if !own {
		bx = newRowBoxes()
	}
	for range n {
		for c := range row[:cols] {
			if len(p) == 0 {
				return errTorn
			}
			tag := p[0]
			p = p[1:]
			switch tag {
			case tagNil:
				row[c] = nil
			case tagString, tagBytes:
				l, k := binary.Uvarint(p)
				if k <= 0 || l > uint64(len(p)-k) {
					return errTorn
				}
				data := p[k : k+int(l)]
				switch {
				case tag == tagBytes && own:
					row[c] = slices.Clone(data)
				case tag == tagBytes:
					row[c] = bx.bytes(c, data)
				case own:
					row[c] = string(data)
				default:
					row[c] = bx.string(c, unsafe.String(unsafe.SliceData(data), len(data)))
				}
				p = p[k+int(l):]
			case tagUint64:
				x, k := binary.Uvarint(p)
				if k <= 0 {
					return errTorn
				}
				row[c], p = bx.uint64(c, x), p[k:]
			case tagID:
				if len(p) < idSize-1 {
					return errTorn
				}
				row[c], p = bx.uint64(c, binary.LittleEndian.Uint64(p)), p[idSize-1:]
			case tagInt64, tagInt32, tagTime:
				x, k := binary.Varint(p)
				if k <= 0 {
					return errTorn
				}
				switch tag {
				case tagInt64:
					row[c] = bx.int64(c, x)
				case tagInt32:
					row[c] = bx.int32(c, int32(x))
				default:
					row[c] = bx.time(c, time.UnixMicro(x).UTC())
				}
				p = p[k:]
			case tagTrue:
				row[c] = true
			case tagFalse:
				row[c] = false
			default:
				return errTorn
			}
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	return nil
}

// segRecords is what readRecords found in a segment file.
type segRecords struct {
	payloads [][]byte // every intact record's payload, in order
	rows     int      // the rows they hold
	// torn says the file does not end with an intact record; intact is
	// the byte offset where the intact records end.
	torn   bool
	intact int64
}

// readRecords reads a segment file whole and returns the payloads of its
// intact records, which share one buffer; reading stops at the first
// record cut short or failing its checksum.
func readRecords(path string) (segRecords, error) {
	var sr segRecords
	b, err := os.ReadFile(path)
	if err != nil {
		return sr, fmt.Errorf("journal: %w", err)
	}
	for len(b) > 0 {
		if len(b) < 8 {
			sr.torn = true
			return sr, nil
		}
		n := binary.LittleEndian.Uint32(b[0:])
		sum := binary.LittleEndian.Uint32(b[4:])
		if uint64(n) > uint64(len(b)-8) {
			sr.torn = true
			return sr, nil
		}
		payload := b[8 : 8+n : 8+n]
		rows, k := binary.Uvarint(payload)
		if crc32.Checksum(payload, crcTable) != sum || k <= 0 {
			sr.torn = true
			return sr, nil
		}
		sr.payloads = append(sr.payloads, payload)
		sr.rows += int(rows)
		sr.intact += 8 + int64(n)
		b = b[8+n:]
	}
	return sr, nil
}

// rowBoxes holds the values of a borrowed row (eachRowCols without own)
// and, per column and type, an interface value that refers to that
// storage, so that decoding a row allocates nothing: a Go interface holding
// a string, an integer or a time otherwise allocates a copy of it, which
// for the loader was about 15 allocations an event. The interfaces are
// only valid until the next row, like the borrowed strings themselves.
type rowBoxes struct {
	str [eventCols]string
	u64 [eventCols]uint64
	i64 [eventCols]int64
	i32 [eventCols]int32
	tm  [eventCols]time.Time
	bs  [eventCols][]byte

	boxStr, boxU64, boxI64, boxI32, boxTm, boxBs [eventCols]driver.Value
}

func newRowBoxes() *rowBoxes {
	b := new(rowBoxes)
	for c := range eventCols {
		b.boxStr[c] = boxAt(&b.str[c], boxTypes.str)
		b.boxU64[c] = boxAt(&b.u64[c], boxTypes.u64)
		b.boxI64[c] = boxAt(&b.i64[c], boxTypes.i64)
		b.boxI32[c] = boxAt(&b.i32[c], boxTypes.i32)
		b.boxTm[c] = boxAt(&b.tm[c], boxTypes.tm)
		b.boxBs[c] = boxAt(&b.bs[c], boxTypes.bs)
	}
	return b
}

// The setters below store a value of column c and return the interface
// that refers to it; on a nil *rowBoxes (an owned row) they box the value
// afresh.

func (b *rowBoxes) string(c int, v string) driver.Value {
	if b == nil {
		return v
	}
	b.str[c] = v
	return b.boxStr[c]
}

func (b *rowBoxes) bytes(c int, v []byte) driver.Value {
	if b == nil {
		return v
	}
	b.bs[c] = v
	return b.boxBs[c]
}

func (b *rowBoxes) uint64(c int, v uint64) driver.Value {
	if b == nil {
		return v
	}
	b.u64[c] = v
	return b.boxU64[c]
}

func (b *rowBoxes) int64(c int, v int64) driver.Value {
	if b == nil {
		return v
	}
	b.i64[c] = v
	return b.boxI64[c]
}

func (b *rowBoxes) int32(c int, v int32) driver.Value {
	if b == nil {
		return v
	}
	b.i32[c] = v
	return b.boxI32[c]
}

func (b *rowBoxes) time(c int, v time.Time) driver.Value {
	if b == nil {
		return v
	}
	b.tm[c] = v
	return b.boxTm[c]
}

// boxTypes are interfaces of each type boxAt is used with, made once:
// boxAt takes their type word (boxing a time.Time afresh would allocate).
var boxTypes = struct{ str, u64, i64, i32, tm, bs any }{"", uint64(0), int64(0), int32(0), time.Time{}, []byte(nil)}

// boxAt returns an interface holding a T whose value is read from *p when
// used: the interface's data word points at *p instead of at a copy. like
// is an interface holding a T (its type word is taken). T is never a
// pointer-shaped type here (those are stored in the interface itself).
func boxAt[T any](p *T, like any) any {
	if _, ok := like.(T); !ok {
		panic(fmt.Sprintf("eventstore: boxAt: %T is not a %T", like, *p))
	}
	type eface struct{ typ, data unsafe.Pointer }
	v := like
	(*eface)(unsafe.Pointer(&v)).data = unsafe.Pointer(p)
	return v
}
