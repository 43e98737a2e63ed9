package sigma

import (
	"slices"
	"time"
)

// Reading ahead. Detection runs on its own goroutine, behind the inputs,
// by when an event's fields map has left the CPU's cache: looking a field
// up cost about 85 ns (its hash group, key and value each a cache miss),
// a microsecond an event at full load. The fields that the engine reads
// for most events (those that choose logsource mappings, and those of the
// rules the traffic keeps evaluating) are few, so an input reads them
// into an AheadBatch right after building the event, while it is in
// cache, and MatchAhead finds them there, side by side. The engine learns
// which fields those are as it runs.

// maxAhead bounds the fields read ahead (one bit each in has).
const maxAhead = 32

// aheadWindow is how many events the engine counts field reads over
// before it chooses the fields to read ahead again; a field read for at
// least one event in aheadShare of them is read ahead.
const (
	aheadWindow = 1 << 16
	aheadShare  = 8
)

// aheadSet is the fields an engine reads ahead.
type aheadSet struct {
	eng  *Engine
	fids []int32
	// slot is, per field id, its index in fids, or -1.
	slot []int8
}

func (e *Engine) newAheadSet(fids []int32) *aheadSet {
	s := &aheadSet{eng: e, fids: fids, slot: make([]int8, len(e.fieldNames))}
	for i := range s.slot {
		s.slot[i] = -1
	}
	for k, id := range fids {
		s.slot[id] = int8(k)
	}
	return s
}

// AheadBatch holds the values read ahead of a batch of events, in chunks
// of aheadChunkEvents events: an input flushes a batch after 200 ms, so a
// slow sender's batches are small, and a full batch of 1,000 grows
// without copying. Add is used by one goroutine; the batch is then handed
// to MatchAhead.
type AheadBatch struct {
	set    *aheadSet
	chunks []*aheadChunk
	n      int // events added
}

const aheadChunkEvents = 64

type aheadChunk struct {
	vals []any // len(set.fids) per event
	// has, per event: bit k says the field set.fids[k] is present.
	has [aheadChunkEvents]uint64
}

// NewAheadBatch starts an AheadBatch of up to about n events; it
// allocates on the first Add. It is safe for concurrent use, with Match
// too.
func (e *Engine) NewAheadBatch(n int) *AheadBatch {
	return &AheadBatch{set: e.ahead.Load(), chunks: make([]*aheadChunk, 0, (n+aheadChunkEvents-1)/aheadChunkEvents)}
}

// Add reads ahead the fields of ev, the batch's next event.
func (b *AheadBatch) Add(ev Event) {
	nf := len(b.set.fids)
	k := b.n % aheadChunkEvents
	if k == 0 {
		b.chunks = append(b.chunks, &aheadChunk{vals: make([]any, aheadChunkEvents*nf)})
	}
	c := b.chunks[len(b.chunks)-1]
	vals := c.vals[k*nf : (k+1)*nf]
	var has uint64
	for j, id := range b.set.fids {
		// For a MapEvent, Get follows nested maps as scratch.get does.
		v, ok := ev.Get(b.set.eng.fieldNames[id])
		vals[j] = v
		if ok {
			has |= 1 << j
		}
	}
	c.has[k] = has
	b.n++
}

// Len is the number of events added.
func (b *AheadBatch) Len() int { return b.n }

// MatchAhead is Match with the values b read ahead of ev, b's event i.
// A batch read ahead for another engine (the rules were reloaded since)
// is not used.
func (e *Engine) MatchAhead(ev Event, b *AheadBatch, i int, t time.Time) []Match {
	e.mu.Lock()
	defer e.mu.Unlock()
	if b != nil && b.set.eng == e && i >= 0 && i < b.n {
		nf := len(b.set.fids)
		c, k := b.chunks[i/aheadChunkEvents], i%aheadChunkEvents
		e.sc.ahead = b.set.slot
		e.sc.aheadVals = c.vals[k*nf : (k+1)*nf]
		e.sc.aheadHas = c.has[k]
	}
	return e.match(ev, t)
}

// chooseAhead chooses the fields to read ahead from the counts of the
// fields read (scratch.reads) over the last aheadWindow events, and starts
// counting again. e.mu is held.
func (e *Engine) chooseAhead() {
	reads := e.sc.reads
	var fids []int32
	for id, n := range reads {
		if n >= aheadWindow/aheadShare {
			fids = append(fids, int32(id))
		}
	}
	slices.SortFunc(fids, func(a, b int32) int { return int(reads[b]) - int(reads[a]) })
	fids = fids[:min(len(fids), maxAhead)]
	slices.Sort(fids)
	clear(reads)
	if cur := e.ahead.Load(); !slices.Equal(cur.fids, fids) {
		e.ahead.Store(e.newAheadSet(fids))
	}
}

// initAhead reads ahead, until the engine has counted, the fields that
// choose logsource mappings: every event is looked up by them.
func (e *Engine) initAhead() {
	e.sc.reads = make([]uint32, len(e.fieldNames))
	var fids []int32
	for _, lf := range e.lsIndex {
		fids = append(fids, lf.fid)
	}
	slices.Sort(fids)
	fids = slices.Compact(fids)
	e.ahead.Store(e.newAheadSet(fids[:min(len(fids), maxAhead)]))
}

// AheadFields is the event fields NewAheadBatch reads ahead now, sorted.
func (e *Engine) AheadFields() []string {
	s := e.ahead.Load()
	out := make([]string, len(s.fids))
	for i, id := range s.fids {
		out[i] = e.fieldNames[id]
	}
	slices.Sort(out)
	return out
}
