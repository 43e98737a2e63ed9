package eventstore

import (
	"context"
	"crypto/md5"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/event"
	"github.com/nocsoc/nocsoc/internal/query"
)

// eventCols is the number of columns of the events table (schema.go).
const eventCols = 25

// Column positions in an appended row that AppendEvents fills late.
const colID = 0

// ipHash is the key stored in source_ip_hash and destination_ip_hash: the
// first 8 bytes of the MD5 of the stored text, little-endian, shifted right
// by one so that it is a BIGINT (database/sql rejects uint64 arguments with
// the high bit set). That is (md5_number_upper(text) >> 1)::BIGINT in SQL,
// so migrations and SQL-generated data compute the same key. An equality filter on an IP scans this integer
// column (tens of milliseconds for 10M rows) instead of decompressing the
// text column (most IPs are unique, so the text is FSST-compressed); the text
// is then compared on the few rows left, which keeps the match exact.
func ipHash(s string) int64 {
	h := md5.Sum([]byte(s))
	return int64(binary.LittleEndian.Uint64(h[:8]) >> 1)
}

// appendReq is one AppendEvents call waiting for a group commit: its rows
// encoded (journal.go), rowAt[i] the offset of row i.
type appendReq struct {
	enc   []byte
	rowAt []int
	ids   []uint64
	err   error
	done  bool // guarded by Store.wmu
}

// eventWriter is the events side of Store's write path. Concurrent
// AppendEvents callers convert their rows in parallel, queue them here, and
// whichever holds commitMu next writes every queued call as one journal
// record with one fsync (group commit): each caller returns once its own
// rows are durable. The loader (events_load.go) then moves them into
// DuckDB in large chunks.
type eventWriter struct {
	mu      sync.Mutex
	pending []*appendReq

	// commitMu serialises journal commits and the loader's segment switch;
	// nextID and jn are guarded by it.
	commitMu sync.Mutex
	nextID   uint64
	jn       journal

	lmu sync.Mutex
	ld  loadState // guarded by lmu

	lconn *sql.Conn // the loader's connection
	// files indexes the event files the loader writes (eventfiles.go);
	// nil for an in-memory store, whose events go to the events table.
	files *eventFiles
	// mergeAfter pauses merging after a failed merge (loader only).
	mergeAfter time.Time
	kick, stop chan struct{}
	loaderDone chan struct{}
	// loaderNice is the nice value the loader's thread runs at, once known
	// (-100 before; tests read it).
	loaderNice atomic.Int32
}

// rowBuilder encodes events as journal rows (journal.go). It keeps its
// scratch buffers between events and, pooled, between calls.
type rowBuilder struct {
	buf []byte
	enc []byte // AppendEventsUnpaced's rows
	// slots remembers the slots of field names seen lately (slotOf).
	slots [slotCacheSize]slotCacheEntry
}

// slotCacheSize is the number of field names rowBuilder.slotOf remembers.
const slotCacheSize = 256

type slotCacheEntry struct {
	k    string
	slot int
	pre  uint64 // namePrefix(k)
	// key is k as a JSON object key with its colon, made on first need.
	key []byte
}

// slotOf is slotOf(k), remembered by where k's bytes are: the names an
// input or a normalizer sets are the same strings event after event, so
// a repeat costs one comparison that finds the same pointer, instead of
// slotOf's string switch. An entry is used only when its name equals k
// (it holds its name, so those bytes stay as they were): a colliding name
// or a copy at another address (names decoded from JSON) is at worst
// looked up again.
func (rb *rowBuilder) slotOf(k string) (slot int, pre uint64, at int32) {
	if k == "" {
		return slotOf(k), 0, -1
	}
	h := uintptr(unsafe.Pointer(unsafe.StringData(k)))
	at = int32((h>>4 ^ h>>12 ^ uintptr(len(k))) % slotCacheSize)
	e := &rb.slots[at]
	if e.k != k {
		e.k, e.slot, e.pre, e.key = k, slotOf(k), namePrefix(k), nil
	}
	return e.slot, e.pre, at
}

// appendKey appends kv's name as a JSON object key and a colon, from the
// cache entry at kv.at while it still holds that name.
func (rb *rowBuilder) appendKey(j []byte, kv *fieldKV) []byte {
	if kv.at < 0 || rb.slots[kv.at].k != kv.k {
		return append(appendJSONString(j, kv.k), ':')
	}
	e := &rb.slots[kv.at]
	if e.key == nil {
		e.key = append(appendJSONString(nil, kv.k), ':')
	}
	return append(j, e.key...)
}

// namePrefix is k's first 8 bytes as a big-endian number (zero-padded):
// names whose prefixes differ compare as their prefixes do.
func namePrefix(k string) uint64 {
	var b [8]byte
	copy(b[:], k)
	return binary.BigEndian.Uint64(b[:])
}

// fieldKV is one field of an event being encoded, with its slot (slotOf).
type fieldKV struct {
	k    string
	v    any
	slot int
	pre  uint64 // namePrefix(k)
	at   int32  // its entry in rowBuilder.slots, or -1
}

// Slots of fieldSlots: the promoted fields first (their index in
// promoted), then message and the fields the packed column derives.
const (
	slotMessage = len(promoted) + iota
	slotSyslogPri
	slotSeverityCode
	slotSeverityName
	slotFacilityCode
	slotFacilityName
	slotProcID
	slotProcessPID
	slotInputName
	slotURLOriginal
	numSlots
)

// fieldSlots holds the values of the fields encode treats specially,
// noted in the one pass over an event's fields.
type fieldSlots struct {
	val [numSlots]any
	has [numSlots]bool
}

// slotOf is the slot of field name k, or -1.
func slotOf(k string) int {
	if i := promotedIndex(k); i >= 0 {
		return i
	}
	switch k {
	case "message":
		return slotMessage
	case fSyslogPri:
		return slotSyslogPri
	case fSeverityCode:
		return slotSeverityCode
	case fSeverityName:
		return slotSeverityName
	case fFacilityCode:
		return slotFacilityCode
	case fFacilityName:
		return slotFacilityName
	case fProcID:
		return slotProcID
	case fProcessPID:
		return slotProcessPID
	case fInputName:
		return slotInputName
	case fURLOriginal:
		return slotURLOriginal
	}
	return -1
}

// note records v as the value of slot i (slotOf of its name), if it is
// one, and returns i.
func (fs *fieldSlots) note(i int, v any) int {
	if i >= 0 {
		fs.val[i], fs.has[i] = v, true
	}
	return i
}

// derivedSlot reports whether the field of slot i is left out of the
// fields JSON under bits.
func derivedSlot(i int, bits int32) bool {
	switch i {
	case slotSeverityCode, slotSeverityName, slotFacilityCode, slotFacilityName:
		return bits&packSyslogPri != 0
	case slotProcID:
		return bits&packProcID != 0
	case slotInputName:
		return bits&packInputName != 0
	case slotURLOriginal:
		return bits&packURLOriginal != 0
	}
	return false
}

// fieldRef is a field of an event being encoded (kvs[i]) with its name's
// first 8 bytes (fieldKV.pre): sortFields moves these 16 bytes, not the
// 56 of a fieldKV.
type fieldRef struct {
	pre uint64
	i   int
}

// sortFields sorts refs by the names of their fields in kvs. An event has
// a few dozen at most, so an insertion sort comparing the names directly
// beats a general sort's calls through a comparison function.
func sortFields(kvs []fieldKV, refs []fieldRef) {
	for i := 1; i < len(refs); i++ {
		for j := i; j > 0 && fieldLess(kvs, refs[j], refs[j-1]); j-- {
			refs[j], refs[j-1] = refs[j-1], refs[j]
		}
	}
}

// fieldLess orders fields by name, by the names' first 8 bytes when they
// differ (most do), which spares a string comparison.
func fieldLess(kvs []fieldKV, a, b fieldRef) bool {
	if a.pre != b.pre {
		return a.pre < b.pre
	}
	return kvs[a.i].k < kvs[b.i].k
}

var rowBuilders = sync.Pool{New: func() any { return new(rowBuilder) }}

// idSize is the size of a row's id slot: a tagID byte and the id as 8
// bytes little-endian, patched in at commit when ids are assigned.
const idSize = 9

// putID writes id into the slot encode left at the start of a row.
func putID(row []byte, id uint64) {
	row[0] = tagID
	binary.LittleEndian.PutUint64(row[1:idSize], id)
}

// encode appends e as one journal row (every column of the events table
// in order, the id slot left for putID) to b. A promoted field goes to its
// column when its value fits; it also stays in the JSON when reading the
// column back would not give the identical value (a port sent as the
// string "22"), so events round-trip exactly. message always holds the
// searched text: the message field, or raw (with message_from_raw set)
// when there is no string message, so a search reads one column. Values
// are written straight into b: no Go value per column is allocated.
func (rb *rowBuilder) encode(b []byte, e *event.Event, received time.Time) ([]byte, error) {
	var (
		consumedMsg bool
		consumed    [len(promoted)]bool
		hashes      [2]int64
		hashed      [2]bool
		fs          fieldSlots
		// On the stack (unless an event has more fields): filling and
		// sorting a heap slice of strings and interfaces costs a GC write
		// barrier for every pointer stored while the collector runs.
		stack    [64]fieldKV
		refStack [64]fieldRef
	)
	// One pass over the fields: every one is kept for the JSON below, and
	// those encode treats specially are noted, so that no field is looked
	// up in the map.
	all := stack[:0]
	for k, v := range e.Fields {
		if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return b, fmt.Errorf("Fields[%q]: %v is not a JSON number", k, f)
		}
		slot, pre, at := rb.slotOf(k)
		all = append(all, fieldKV{k, v, fs.note(slot, v), pre, at})
	}
	b = append(b, tagID, 0, 0, 0, 0, 0, 0, 0, 0) // idSize bytes: putID fills it
	b = encTime(b, e.Time)
	b = encTime(b, received)
	b = encNullStr(b, e.Host)
	b = encNullStr(b, e.Input)
	raw := validUTF8(e.Raw)
	msg := raw
	if m, ok := fs.val[slotMessage].(string); ok {
		// The message is usually the end of the raw line: valid already
		// when raw was and it starts at a character (raw may have been
		// replaced above, so it is compared with the replacement).
		if !(len(m) > 0 && len(m) <= len(raw) && raw[len(raw)-len(m):] == m && utf8.RuneStart(m[0])) {
			m = validUTF8(m)
		}
		msg = m
		consumedMsg = true
	}
	b = encStr(b, msg)
	for i, p := range promoted {
		v, ok := fs.val[i], fs.has[i]
		if !ok || v == nil {
			b = append(b, tagNil)
			if p.ipKey != "" {
				b = append(b, tagNil)
			}
			continue
		}
		if p.integer {
			var n float64
			switch x := v.(type) {
			case float64:
				n = x
			case string:
				if f, err := strconv.ParseFloat(x, 64); err == nil {
					n = f
				} else {
					n = math.NaN()
				}
			default:
				n = math.NaN()
			}
			if n == math.Trunc(n) && n >= math.MinInt32 && n <= math.MaxInt32 {
				b = binary.AppendVarint(append(b, tagInt32), int64(n))
				_, consumed[i] = v.(float64)
			} else {
				b = append(b, tagNil)
			}
			continue
		}
		s, isStr := v.(string)
		if !isStr {
			s = fmt.Sprint(v)
		} else if utf8.ValidString(s) {
			consumed[i] = true
		}
		s = validUTF8(s)
		b = encStr(b, s)
		if p.ipKey != "" {
			if a, err := netip.ParseAddr(s); err == nil {
				k := query.IPKey(a)
				b = binary.AppendUvarint(append(b, tagBytes), uint64(len(k)))
				b = append(b, k...)
			} else {
				b = append(b, tagNil)
			}
			h := 0
			if p.field != "source.ip" {
				h = 1
			}
			hashes[h], hashed[h] = ipHash(s), true
		}
	}
	// fields: the rest as JSON, less what packed derives.
	packed := fs.derivedBits(e.Input, consumed[urlPathIndex])
	refs := refStack[:0]
	for i := range all {
		kv := &all[i]
		switch {
		case kv.slot < 0:
		case kv.slot == slotMessage && consumedMsg,
			kv.slot < len(promoted) && consumed[kv.slot],
			derivedSlot(kv.slot, packed):
			continue
		}
		refs = append(refs, fieldRef{kv.pre, i})
	}
	if len(refs) == 0 {
		b = append(b, tagNil)
	} else {
		sortFields(all, refs)
		j := append(rb.buf[:0], '{')
		for i, r := range refs {
			kv := &all[r.i]
			if i > 0 {
				j = append(j, ',')
			}
			j = rb.appendKey(j, kv)
			var err error
			if j, err = appendJSONValue(j, kv.v); err != nil {
				return b, fmt.Errorf("Fields: %w", err)
			}
		}
		j = append(j, '}')
		rb.buf = j
		b = append(b, tagString)
		b = binary.AppendUvarint(b, uint64(len(j)))
		b = append(b, j...)
	}
	rawCol, rawBit := splitRaw(raw, msg, !consumedMsg)
	packed |= rawBit
	if rawBit == packRawIsMessage {
		b = append(b, tagNil)
	} else {
		b = encStr(b, rawCol)
	}
	b = encNullStr(b, e.ParseError)
	if consumedMsg {
		b = append(b, tagNil)
	} else {
		b = append(b, tagTrue) // message_from_raw
	}
	for h := range hashes {
		if hashed[h] {
			b = binary.AppendVarint(append(b, tagInt64), hashes[h])
		} else {
			b = append(b, tagNil)
		}
	}
	b = binary.AppendVarint(append(b, tagInt32), int64(packed))
	return b, nil
}

// build converts e to the appender's column values (id nil), through
// encode: tests read single columns this way.
func (rb *rowBuilder) build(row []driver.Value, e *event.Event, received time.Time) error {
	b, err := rb.encode(binary.AppendUvarint(nil, 1), e, received)
	if err != nil {
		return err
	}
	return eachRow(b, true, nil, func(r []driver.Value) error {
		copy(row, r)
		row[colID] = nil
		return nil
	})
}

func encTime(b []byte, t time.Time) []byte {
	return binary.AppendVarint(append(b, tagTime), t.UnixMicro())
}

func encStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(append(b, tagString), uint64(len(s)))
	return append(b, s...)
}

// encNullStr writes "" as NULL and replaces invalid UTF-8.
func encNullStr(b []byte, s string) []byte {
	if s == "" {
		return append(b, tagNil)
	}
	return encStr(b, validUTF8(s))
}

// urlPathIndex is url.path's index in promoted.
var urlPathIndex = promotedIndex(fURLPath)

// promotedIndex is the index in promoted of a field name, or -1.
func promotedIndex(name string) int {
	switch name {
	case "source.ip":
		return 0
	case "source.port":
		return 1
	case "destination.ip":
		return 2
	case "user.name":
		return 3
	case "process.name":
		return 4
	case "event.action":
		return 5
	case "event.outcome":
		return 6
	case "event.category":
		return 7
	case "http.response.status_code":
		return 8
	case "url.path":
		return 9
	}
	return -1
}

// appendJSONValue encodes the JSON types events carry by hand, like
// encoding/json does; anything else goes through encoding/json.
func appendJSONValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendJSONString(b, x), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case float64:
		return appendJSONFloat(b, x), nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, j...), nil
}

// appendJSONFloat formats like encoding/json (ES6 number formatting).
func appendJSONFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	if abs < 1e15 && f == math.Trunc(f) && (f != 0 || !math.Signbit(f)) {
		// An integer (ports, pids, sizes, codes: most numbers events
		// carry) prints the same digits, without the float formatting.
		return strconv.AppendInt(b, int64(f), 10)
	}
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s like encoding/json with HTML escaping: <, >, &,
// U+2028 and U+2029 become \u escapes and invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendEvents assigns ids to evs and makes them durable in the journal in
// one group commit, so the caller may then acknowledge its senders; the ids
// are in the order of evs, and evs[i].ID is set too. Calls that wait for a
// commit meanwhile are committed together. An event without Time, or with
// a field value JSON cannot hold (NaN, ±Inf, channels …), rejects the
// whole call with an error naming it, and nothing of it is written.
// Received defaults to the store's clock; invalid UTF-8 is replaced by
// U+FFFD. Before returning it paces the caller (Pace).
func (s *Store) AppendEvents(ctx context.Context, evs []event.Event) ([]uint64, error) {
	ids, err := s.AppendEventsUnpaced(ctx, evs)
	if err != nil {
		return nil, err
	}
	s.Pace(ctx)
	return ids, nil
}

// Pace is the back-pressure on writers: while the loader is behind by more
// than MaxBacklog rows (MaxPending for an in-memory store, which cannot
// spill) it waits for it (or ctx). The rows are durable already, so a
// caller may hand them on (to detection) first and pace after.
func (s *Store) Pace(ctx context.Context) {
	if at := s.paceAt(); s.pendingRows() > at {
		_ = s.waitLoaded(ctx, at) // pacing only
	}
}

// paceAt is the backlog beyond which Pace waits.
func (s *Store) paceAt() int {
	if s.ev.jn.dir == "" {
		return min(s.o.MaxPending, s.o.MaxBacklog)
	}
	return s.o.MaxBacklog
}

// AppendEventsUnpaced is AppendEvents without Pace.
func (s *Store) AppendEventsUnpaced(ctx context.Context, evs []event.Event) ([]uint64, error) {
	b := s.NewEventBatch(len(evs))
	for i := range evs {
		b.Add(&evs[i])
	}
	return b.AppendUnpaced(ctx, evs)
}

// EventBatch encodes events as journal rows one at a time, as an input
// builds them, for one AppendUnpaced. An input that encodes each event
// right after parsing it finds the event's fields still in the CPU's
// cache; encoding a whole batch of a thousand at the end read them back
// from memory (docs/BENCHMARKS.md). A batch is used by one goroutine.
type EventBatch struct {
	s          *Store
	rb         *rowBuilder
	enc        []byte
	rowAt      []int
	minT, maxT time.Time
	err        error // the first event that could not be encoded
	used       bool
}

// NewEventBatch starts a batch of up to about n events. It holds no
// buffer until the first Add (an input starts its next batch before it
// reads), and room for at most 64 rows' offsets, growing as needed.
func (s *Store) NewEventBatch(n int) *EventBatch {
	return &EventBatch{s: s, rowAt: make([]int, 0, min(n, 64))}
}

// Add encodes e as the batch's next row. An event that cannot be stored
// (no Time, a value JSON cannot hold) makes AppendUnpaced fail, naming it.
func (b *EventBatch) Add(e *event.Event) {
	if b.rb == nil {
		b.rb = rowBuilders.Get().(*rowBuilder)
		b.enc, b.rb.enc = b.rb.enc[:0], nil
	}
	i := len(b.rowAt)
	b.rowAt = append(b.rowAt, len(b.enc))
	if b.err != nil {
		return
	}
	if e.Time.IsZero() {
		b.err = fmt.Errorf("eventstore: append events: %w", &check.FieldError{Field: fmt.Sprintf("events[%d].Time", i), Reason: "is required"})
		return
	}
	received := e.Received
	if received.IsZero() {
		received = b.s.o.Now()
	}
	var err error
	if b.enc, err = b.rb.encode(b.enc, e, received); err != nil {
		b.err = fmt.Errorf("eventstore: append events: events[%d].%w", i, err)
		return
	}
	if i == 0 || e.Time.Before(b.minT) {
		b.minT = e.Time
	}
	if i == 0 || e.Time.After(b.maxT) {
		b.maxT = e.Time
	}
}

// AppendUnpaced is AppendEventsUnpaced of evs, which must be the events
// added, in order. The rows are used once: a second call (a retry after
// an error) or other events are encoded afresh.
func (b *EventBatch) AppendUnpaced(ctx context.Context, evs []event.Event) ([]uint64, error) {
	if b.used || len(evs) != len(b.rowAt) {
		return b.s.AppendEventsUnpaced(ctx, evs)
	}
	b.used = true
	// The rows are copied into the journal record at commit: the buffer
	// is the next batch's.
	defer func() {
		if b.rb != nil {
			b.rb.enc = b.enc[:0]
			rowBuilders.Put(b.rb)
			b.rb, b.enc = nil, nil
		}
	}()
	if b.err != nil {
		return nil, b.err
	}
	if len(evs) == 0 {
		return []uint64{}, nil
	}
	s := b.s
	req := &appendReq{rowAt: b.rowAt, enc: b.enc}
	minT, maxT := b.minT, b.maxT
	s.ev.mu.Lock()
	s.ev.pending = append(s.ev.pending, req)
	s.ev.mu.Unlock()

	s.ev.commitMu.Lock()
	if !req.done {
		s.ev.mu.Lock()
		group := s.ev.pending
		s.ev.pending = nil
		s.ev.mu.Unlock()
		s.commitEventGroup(group)
	}
	s.ev.commitMu.Unlock()
	if req.err != nil {
		return nil, fmt.Errorf("eventstore: append events: %w", req.err)
	}
	for i := range evs {
		evs[i].ID = req.ids[i]
	}
	s.span.extend(minT, maxT)
	return req.ids, nil
}

// commitEventGroup writes the queued calls of group as one journal record
// with consecutive ids; the caller holds commitMu.
func (s *Store) commitEventGroup(group []*appendReq) {
	defer func() {
		for _, r := range group {
			r.done = true
		}
	}()
	if s.ev.stop == nil || isClosed(s.ev.stop) {
		for _, r := range group {
			r.err = ErrClosed
		}
		return
	}
	start := time.Now()
	id := s.ev.nextID
	n := 0
	parts := make([][]byte, len(group))
	for k, r := range group {
		r.ids = make([]uint64, len(r.rowAt))
		for i, at := range r.rowAt {
			putID(r.enc[at:], id)
			r.ids[i] = id
			id++
		}
		n += len(r.rowAt)
		parts[k] = r.enc
	}
	seq := s.ev.jn.seq
	payload, err := s.ev.jn.commit(n, parts)
	if err != nil {
		// Nothing of the group is acknowledged; the ids are not reused, so
		// a partly written record that a restart replays cannot collide.
		s.ev.nextID = id
		if s.ev.jn.seq != seq {
			// The journal moved to a new file to leave the damaged write
			// behind: the open segment's rows are now in two files, so its
			// records must stay in memory (pinned, never spilled).
			s.ev.lmu.Lock()
			s.ev.ld.cur.pinned = true
			s.ev.lmu.Unlock()
		}
		for _, r := range group {
			r.err, r.ids = err, nil
		}
		return
	}
	s.ev.nextID = id
	s.committed(payload, n, id-1)
	if s.o.OnWrite != nil {
		s.o.OnWrite(n, time.Since(start))
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
