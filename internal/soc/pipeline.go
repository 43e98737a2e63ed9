// Package soc owns the SOC event pipeline behind every input: it makes a
// batch of events durable in the event store, then runs detection over it
// in storage order. Inputs acknowledge their senders only after Write
// returns.
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

// Store makes events durable and assigns their ids.
type Store interface {
	AppendEvents(ctx context.Context, evs []event.Event) ([]uint64, error)
}

// Detector evaluates stored events.
type Detector interface {
	Process(ctx context.Context, evs []event.Event) error
}

// Pipeline is the ingest sink: store, then detect.
type Pipeline struct {
	store  Store
	detect Detector
	log    *slog.Logger
	// mu keeps storage order and detection order the same, which the
	// detector relies on to map correlation matches back to event ids.
	mu sync.Mutex

	events     atomic.Uint64
	batches    atomic.Uint64
	detectErrs atomic.Uint64
	// lastLatency is the last batch's store+detect time in ns.
	lastLatency atomic.Int64
}

// New creates a Pipeline; detect may be nil (storage only).
func New(store Store, detect Detector, log *slog.Logger) *Pipeline {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pipeline{store: store, detect: detect, log: log.With("component", "soc")}
}

// Write stores a batch and runs detection over it. It returns once the
// batch is durable; a detection failure is logged and counted but does not
// fail the write (the events are stored and searchable).
func (p *Pipeline) Write(ctx context.Context, evs []event.Event) error {
	if len(evs) == 0 {
		return nil
	}
	start := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	ids, err := p.store.AppendEvents(ctx, evs)
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
	if p.detect != nil {
		if err := p.detect.Process(ctx, evs); err != nil {
			p.detectErrs.Add(1)
			p.log.Error("detection", "events", len(evs), "err", err)
		}
	}
	p.lastLatency.Store(int64(time.Since(start)))
	return nil
}

// Stats are the pipeline's counters.
type Stats struct {
	Events, Batches, DetectErrors uint64
	LastBatch                     time.Duration
}

// Stats returns the counters.
func (p *Pipeline) Stats() Stats {
	return Stats{Events: p.events.Load(), Batches: p.batches.Load(), DetectErrors: p.detectErrs.Load(), LastBatch: time.Duration(p.lastLatency.Load())}
}
