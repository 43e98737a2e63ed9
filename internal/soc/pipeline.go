// Package soc owns the SOC event pipeline behind every input: it makes a
// batch of events durable in the event store, acknowledges it, and hands
// it to detection. Inputs acknowledge their senders only after Write
// returns, so nothing acknowledged is ever lost; detection runs behind, on
// its own goroutine, with back-pressure when it falls behind.
package soc

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nocsoc/nocsoc/internal/event"
)

// Store makes events durable and assigns their ids. It must be safe for
// concurrent use (the event store commits concurrent batches together).
type Store interface {
	AppendEvents(ctx context.Context, evs []event.Event) ([]uint64, error)
}

// PacedStore is a Store whose back-pressure can come after the append:
// Write hands durable events to detection first and then waits, so
// detection does not wait for the store to catch up.
type PacedStore interface {
	AppendEventsUnpaced(ctx context.Context, evs []event.Event) ([]uint64, error)
	Pace(ctx context.Context)
}

// Detector evaluates stored events. Correlation windows use event time,
// and the detector maps its matches to event ids itself, so batches need
// not arrive in storage order. Process gets every batch waiting at once,
// so that their alerts can be raised together.
type Detector interface {
	Process(ctx context.Context, batches ...[]event.Event) error
}

// AheadDetector is a Detector that reads each event ahead as an input
// builds it (detect.Detector): a Batch gives every event added to the
// event.Ahead that NewAhead started, and the batch reaches ProcessAhead
// with it, ahead[i] for batches[i].
type AheadDetector interface {
	NewAhead(n int) event.Ahead
	ProcessAhead(ctx context.Context, batches [][]event.Event, ahead []event.Ahead) error
}

// Pipeline is the ingest sink: store, then detect.
type Pipeline struct {
	store  Store
	detect Detector
	log    *slog.Logger
	// newStoreBatch starts the store's side of a Batch (SetStoreBatches).
	newStoreBatch func(n int) StoreBatch
	queue         chan batch
	// maxQueued bounds the events queued or being evaluated; queued
	// counts them and room is closed (and replaced) whenever some leave.
	maxQueued int
	qmu       sync.Mutex
	queued    int
	room      chan struct{}
	wg        sync.WaitGroup
	// stopped is closed when Run has returned: until then a Write whose
	// context ended (inputs flushing at shutdown) still queues its batch.
	stopped  chan struct{}
	stopOnce sync.Once

	events     atomic.Uint64
	batches    atomic.Uint64
	detectErrs atomic.Uint64
	detected   atomic.Uint64
	// lastLag is the time from stored to detected of the oldest batch of
	// the last evaluation, in ns.
	lastLag atomic.Int64
}

type batch struct {
	evs    []event.Event
	ahead  event.Ahead // what detection read ahead of evs, or nil
	stored time.Time
}

// New creates a Pipeline; detect may be nil (storage only). Call Run to
// start detection.
func New(store Store, detect Detector, log *slog.Logger) *Pipeline {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pipeline{store: store, detect: detect, log: log.With("component", "soc"),
		maxQueued: DetectionQueue, queue: make(chan batch, DetectionQueue), room: make(chan struct{}), stopped: make(chan struct{})}
}

// DetectionQueue is how many stored events may wait for detection (or be
// under evaluation) before Write waits for room, which is back-pressure to
// the inputs. A batch larger than this is let in alone.
//
// Every queued event is held in memory with its fields (about 1.5 KB), and
// the queue only fills when detection is behind, so a longer one buys no
// throughput: it costs memory and adds to the event-to-alert latency
// under overload. At full load 64,000 queued events took 150-250 MB more
// resident memory than 8,192 and were no faster (docs/BENCHMARKS.md).
const DetectionQueue = 8192

// Run evaluates stored batches until ctx ends, then finishes what is
// queued so every stored event is evaluated once.
func (p *Pipeline) Run(ctx context.Context) {
	defer p.stopOnce.Do(func() { close(p.stopped) })
	var bs []batch
	for {
		select {
		case b := <-p.queue:
			// Not cancelled with ctx: a batch being evaluated at shutdown
			// finishes like the queued ones after it.
			bs = p.waiting(bs, b)
			p.process(context.WithoutCancel(ctx), bs)
		case <-ctx.Done():
			for {
				select {
				case b := <-p.queue:
					bs = p.waiting(bs, b)
					p.process(context.WithoutCancel(ctx), bs)
				default:
					return
				}
			}
		}
	}
}

// waiting returns first and the batches already queued behind it, in bs's
// storage. When detection is behind, the alerts of several batches are then raised together:
// raising is a commit in the incident workflow, and at full load this
// halved the commits and took the alert store from 8.8 to 7.3 % of the
// server's CPU (docs/BENCHMARKS.md).
func (p *Pipeline) waiting(bs []batch, first batch) []batch {
	bs = append(bs[:0], first)
	for {
		select {
		case b := <-p.queue:
			bs = append(bs, b)
		default:
			return bs
		}
	}
}

func (p *Pipeline) process(ctx context.Context, bs []batch) {
	if p.detect == nil {
		return
	}
	evs := make([][]event.Event, len(bs))
	ahead := make([]event.Ahead, len(bs))
	n := 0
	for i, b := range bs {
		evs[i], ahead[i] = b.evs, b.ahead
		n += len(b.evs)
	}
	var err error
	if ad, ok := p.detect.(AheadDetector); ok {
		err = ad.ProcessAhead(ctx, evs, ahead)
	} else {
		err = p.detect.Process(ctx, evs...)
	}
	if err != nil {
		p.detectErrs.Add(1)
		p.log.Error("detection", "events", n, "err", err)
	}
	p.detected.Add(uint64(n))
	p.lastLag.Store(int64(time.Since(bs[0].stored)))
	p.qmu.Lock()
	p.queued -= n
	close(p.room)
	p.room = make(chan struct{})
	p.qmu.Unlock()
	clear(bs) // let the events go
}

// reserve waits until n more events fit in the detection queue and counts
// them in. It returns false when detection has stopped. Once ctx ends it
// keeps waiting (the inputs flush what they read at shutdown, and
// detection drains until it stops).
func (p *Pipeline) reserve(ctx context.Context, n int) bool {
	done := ctx.Done()
	for {
		p.qmu.Lock()
		if p.queued == 0 || p.queued+n <= p.maxQueued {
			p.queued += n
			p.qmu.Unlock()
			return true
		}
		room := p.room
		p.qmu.Unlock()
		select {
		case <-room:
		case <-done:
			done = nil
		case <-p.stopped:
			return false
		}
	}
}

// StoreBatch is a batch of events that a store encodes one at a time as
// they are added (eventstore.EventBatch), then appends unpaced.
type StoreBatch interface {
	Add(e *event.Event)
	AppendUnpaced(ctx context.Context, evs []event.Event) ([]uint64, error)
}

// SetStoreBatches lets Batch hand each event to the store as it is added;
// newBatch starts a store batch of about n events. The store must be a
// PacedStore. Set before the first Write.
func (p *Pipeline) SetStoreBatches(newBatch func(n int) StoreBatch) {
	if _, ok := p.store.(PacedStore); ok {
		p.newStoreBatch = newBatch
	}
}

// Batch is a batch of events an input is reading, prepared event by
// event for the store (SetStoreBatches) and for detection (AheadDetector):
// an event added right after it was parsed is still in the CPU's cache.
// Used by one goroutine.
type Batch struct {
	p     *Pipeline
	sb    StoreBatch  // nil: stored as by Pipeline.Write
	ahead event.Ahead // nil: nothing read ahead
}

// NewBatch starts a batch of about n events.
func (p *Pipeline) NewBatch(n int) *Batch {
	b := &Batch{p: p}
	if p.newStoreBatch != nil {
		b.sb = p.newStoreBatch(n)
	}
	if ad, ok := p.detect.(AheadDetector); ok {
		b.ahead = ad.NewAhead(n)
	}
	return b
}

// Add prepares e, the batch's next event.
func (b *Batch) Add(e *event.Event) {
	if b.sb != nil {
		b.sb.Add(e)
	}
	if b.ahead != nil {
		b.ahead.Add(e)
	}
}

// Write is Pipeline.Write of evs, the events added in order.
func (b *Batch) Write(ctx context.Context, evs []event.Event) error {
	return b.p.write(ctx, evs, b.sb, b.ahead)
}

// Write stores a batch and queues it for detection. It returns once the
// batch is durable; when detection is behind by a full queue it waits for
// room (or ctx), and when the store is behind (PacedStore) it waits for
// it after queueing.
func (p *Pipeline) Write(ctx context.Context, evs []event.Event) error {
	return p.write(ctx, evs, nil, nil)
}

// write is Write, through sb when the events were added to one, with what
// detection read ahead of them.
func (p *Pipeline) write(ctx context.Context, evs []event.Event, sb StoreBatch, ahead event.Ahead) error {
	if len(evs) == 0 {
		return nil
	}
	paced, _ := p.store.(PacedStore)
	var ids []uint64
	var err error
	switch {
	case paced == nil:
		ids, err = p.store.AppendEvents(ctx, evs)
	case sb != nil:
		ids, err = sb.AppendUnpaced(ctx, evs)
	default:
		ids, err = paced.AppendEventsUnpaced(ctx, evs)
	}
	if paced != nil {
		// With detection, the batch is queued for it before the store's
		// back-pressure; without, Write paces like AppendEvents.
		if p.detect != nil {
			defer paced.Pace(ctx)
		} else if err == nil {
			paced.Pace(ctx)
		}
	}
	if err != nil {
		return fmt.Errorf("store events: %w", err)
	}
	for i := range evs {
		if i < len(ids) {
			evs[i].ID = ids[i]
		}
	}
	p.events.Add(uint64(len(evs)))
	p.batches.Add(1)
	if p.detect == nil {
		return nil
	}
	if !p.reserve(ctx, len(evs)) {
		// Stored but not evaluated: say so rather than pretend.
		p.log.Warn("events stored without detection: shutting down", "events", len(evs))
		return nil
	}
	// Every queued batch holds at least one reserved event, so the
	// channel (DetectionQueue long) has room.
	p.queue <- batch{evs: evs, ahead: ahead, stored: time.Now()}
	return nil
}

// Stats are the pipeline's counters.
type Stats struct {
	Events, Batches, Detected, DetectErrors uint64
	// Queued is the batches waiting for detection; QueuedEvents the
	// events in them and in the batches being evaluated.
	Queued, QueuedEvents int
	// DetectionLag is the time from stored to evaluated of the oldest batch
	// of the last evaluation.
	DetectionLag time.Duration
}

// Stats returns the counters.
func (p *Pipeline) Stats() Stats {
	p.qmu.Lock()
	queued := p.queued
	p.qmu.Unlock()
	return Stats{Events: p.events.Load(), Batches: p.batches.Load(), Detected: p.detected.Load(), DetectErrors: p.detectErrs.Load(),
		Queued: len(p.queue), QueuedEvents: queued, DetectionLag: time.Duration(p.lastLag.Load())}
}
