package soc

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/event"
)

// pacedStore makes events durable at once and holds Pace until released.
type pacedStore struct {
	next    uint64
	release chan struct{}
	paced   chan struct{}
}

func (s *pacedStore) AppendEvents(ctx context.Context, evs []event.Event) ([]uint64, error) {
	ids, _ := s.AppendEventsUnpaced(ctx, evs)
	s.Pace(ctx)
	return ids, nil
}

func (s *pacedStore) AppendEventsUnpaced(_ context.Context, evs []event.Event) ([]uint64, error) {
	ids := make([]uint64, len(evs))
	for i := range ids {
		s.next++
		ids[i] = s.next
	}
	return ids, nil
}

func (s *pacedStore) Pace(ctx context.Context) {
	s.paced <- struct{}{}
	select {
	case <-s.release:
	case <-ctx.Done():
	}
}

type chanDetector chan []event.Event

func (d chanDetector) Process(_ context.Context, batches ...[]event.Event) error {
	for _, evs := range batches {
		d <- evs
	}
	return nil
}

// heldDetector hands each Process call's batches to calls and returns
// once release lets it.
type heldDetector struct {
	calls   chan [][]event.Event
	release chan struct{}
}

func (d heldDetector) Process(_ context.Context, batches ...[]event.Event) error {
	d.calls <- batches
	<-d.release
	return nil
}

// TestWaitingBatchesDetectedTogether: batches that queue up while
// detection is busy reach the detector in one call, in order, so their
// alerts are raised together.
func TestWaitingBatchesDetectedTogether(t *testing.T) {
	st := &pacedStore{release: make(chan struct{}), paced: make(chan struct{}, 16)}
	close(st.release)
	det := heldDetector{calls: make(chan [][]event.Event, 4), release: make(chan struct{})}
	p := New(st, det, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	write := func(n int) {
		t.Helper()
		if err := p.Write(ctx, make([]event.Event, n)); err != nil {
			t.Fatal(err)
		}
	}
	write(1)
	if got := <-det.calls; len(got) != 1 || len(got[0]) != 1 {
		t.Fatalf("first call: %d batches", len(got))
	}
	// Detection is busy with the first batch: these three wait.
	write(2)
	write(3)
	write(4)
	det.release <- struct{}{}
	got := <-det.calls
	var sizes []int
	for _, b := range got {
		sizes = append(sizes, len(b))
	}
	if fmt.Sprint(sizes) != "[2 3 4]" {
		t.Fatalf("second call got batches of %v events, want [2 3 4]", sizes)
	}
	det.release <- struct{}{}
	for deadline := time.Now().Add(10 * time.Second); p.Stats().Detected != 10; {
		if time.Now().After(deadline) {
			t.Fatalf("detected = %d, want 10", p.Stats().Detected)
		}
		time.Sleep(time.Millisecond)
	}
	if q := p.Stats().QueuedEvents; q != 0 {
		t.Fatalf("queued events = %d after detection, want 0", q)
	}
}

// TestWriteDetectsBeforePacing: a store behind its loader paces the
// writer, but the durable batch reaches detection first, so alerts do not
// wait for the store to catch up.
func TestWriteDetectsBeforePacing(t *testing.T) {
	st := &pacedStore{release: make(chan struct{}), paced: make(chan struct{}, 1)}
	det := make(chanDetector, 1)
	p := New(st, det, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	done := make(chan error, 1)
	go func() {
		done <- p.Write(ctx, []event.Event{{Time: time.Unix(1, 0)}, {Time: time.Unix(2, 0)}})
	}()
	select {
	case evs := <-det:
		if len(evs) != 2 || evs[0].ID != 1 || evs[1].ID != 2 {
			t.Fatalf("detected %+v, want the two events with ids 1 and 2", evs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the batch did not reach detection while the store paced the writer")
	}
	<-st.paced
	select {
	case err := <-done:
		t.Fatalf("Write returned (%v) before the store released it", err)
	default:
	}
	close(st.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestDetectionQueueBoundsEvents: Write waits while the events waiting for
// (or under) detection would pass the bound, lets a batch larger than the
// bound in alone, and goes on once detection frees room.
func TestDetectionQueueBoundsEvents(t *testing.T) {
	st := &pacedStore{release: make(chan struct{}), paced: make(chan struct{}, 16)}
	close(st.release)
	det := make(chanDetector)
	p := New(st, det, nil)
	p.maxQueued = 3
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	evs := func(n int) []event.Event { return make([]event.Event, n) }
	write := func(n int) chan error {
		done := make(chan error, 1)
		go func() { done <- p.Write(ctx, evs(n)) }()
		return done
	}
	mustReturn := func(what string, done chan error) {
		t.Helper()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: Write did not return", what)
		}
	}
	// mustBlock: Write has not returned after a while (a Write that should
	// wait but does not is caught here; one that is merely slow is not
	// mistaken for waiting, since it must return later anyway).
	mustBlock := func(what string, done chan error) {
		t.Helper()
		select {
		case err := <-done:
			t.Fatalf("%s: Write returned (%v)", what, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	waitQueued := func(want int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); p.Stats().QueuedEvents != want; {
			if time.Now().After(deadline) {
				t.Fatalf("queued events = %d, want %d", p.Stats().QueuedEvents, want)
			}
			time.Sleep(time.Millisecond)
		}
	}

	// A batch of 5 (over the bound of 3) gets in alone: the queue is empty.
	mustReturn("oversized batch into an empty queue", write(5))
	waitQueued(5)
	// Detection holds it (det is unbuffered), so a batch of 1 must wait.
	blocked := write(1)
	mustBlock("while 5 events filled a queue bounded at 3", blocked)
	if got := len(<-det); got != 5 {
		t.Fatalf("detected a batch of %d, want 5", got)
	}
	mustReturn("batch after detection freed room", blocked)
	waitQueued(1)
	// 1 + 2 fit the bound; 1 + 2 + 1 do not.
	mustReturn("batch that fits", write(2))
	waitQueued(3)
	third := write(1)
	mustBlock("past the bound", third)
	for _, want := range []int{1, 2, 1} {
		if got := len(<-det); got != want {
			t.Fatalf("detected a batch of %d, want %d", got, want)
		}
	}
	mustReturn("last batch", third)
	waitQueued(0)
}

// writeBatch adds two events to a new Batch of p and writes it.
func writeBatch(ctx context.Context, t *testing.T, p *Pipeline) []event.Event {
	t.Helper()
	b := p.NewBatch(2)
	evs := []event.Event{{Time: time.Unix(1, 0)}, {Time: time.Unix(2, 0)}}
	for i := range evs {
		b.Add(&evs[i])
	}
	if err := b.Write(ctx, evs); err != nil {
		t.Fatal(err)
	}
	return evs
}

// storeBatch records the events added and appends through its store.
type storeBatch struct {
	st      *pacedStore
	added   []*event.Event
	appends int
}

func (b *storeBatch) Add(e *event.Event) { b.added = append(b.added, e) }

func (b *storeBatch) AppendUnpaced(ctx context.Context, evs []event.Event) ([]uint64, error) {
	b.appends++
	return b.st.AppendEventsUnpaced(ctx, evs)
}

// TestBatchWritesThroughStoreBatch: with SetStoreBatches, a Batch hands
// every event to the store's batch as it is added, stores through it, and
// queues the batch for detection before pacing, like Write.
func TestBatchWritesThroughStoreBatch(t *testing.T) {
	st := &pacedStore{release: make(chan struct{}), paced: make(chan struct{}, 1)}
	close(st.release)
	det := make(chanDetector, 1)
	p := New(st, det, nil)
	var sbs []*storeBatch
	p.SetStoreBatches(func(int) StoreBatch {
		sb := &storeBatch{st: st}
		sbs = append(sbs, sb)
		return sb
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	evs := writeBatch(ctx, t, p)
	<-st.paced
	if len(sbs) != 1 || len(sbs[0].added) != 2 || sbs[0].added[1] != &evs[1] || sbs[0].appends != 1 {
		t.Fatalf("store batches %+v, want one with both events added and appended once", sbs)
	}
	select {
	case got := <-det:
		if len(got) != 2 || got[0].ID != 1 || got[1].ID != 2 {
			t.Fatalf("detected %+v, want the two events with ids 1 and 2", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the batch did not reach detection")
	}
	// Without detection nothing is queued, and the store still paces.
	p2 := New(st, nil, nil)
	p2.SetStoreBatches(func(int) StoreBatch { return &storeBatch{st: st} })
	b2 := p2.NewBatch(1)
	one := []event.Event{{Time: time.Unix(3, 0)}}
	b2.Add(&one[0])
	if err := b2.Write(ctx, one); err != nil || one[0].ID != 3 {
		t.Fatalf("Write without detection: %v, id %d", err, one[0].ID)
	}
	<-st.paced
}

// aheadDetector is an AheadDetector whose read-ahead records the events
// added; ProcessAhead hands on each batch with its read-ahead.
type aheadDetector struct {
	got chan aheadCall
}

type aheadCall struct {
	evs   []event.Event
	ahead event.Ahead
}

type recordAhead struct{ added []*event.Event }

func (a *recordAhead) Add(e *event.Event) { a.added = append(a.added, e) }

func (d aheadDetector) Process(ctx context.Context, batches ...[]event.Event) error {
	return d.ProcessAhead(ctx, batches, nil)
}

func (d aheadDetector) NewAhead(int) event.Ahead { return &recordAhead{} }

func (d aheadDetector) ProcessAhead(_ context.Context, batches [][]event.Event, ahead []event.Ahead) error {
	for i, evs := range batches {
		c := aheadCall{evs: evs}
		if i < len(ahead) {
			c.ahead = ahead[i]
		}
		d.got <- c
	}
	return nil
}

// TestBatchReadsAheadForDetection: a Batch gives every event added to the
// AheadDetector's read-ahead and hands it to ProcessAhead with the batch;
// Write (no batch) has none.
func TestBatchReadsAheadForDetection(t *testing.T) {
	st := &pacedStore{release: make(chan struct{}), paced: make(chan struct{}, 2)}
	close(st.release)
	det := aheadDetector{got: make(chan aheadCall, 2)}
	p := New(st, det, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	writeBatch(ctx, t, p)
	c := <-det.got
	ra, ok := c.ahead.(*recordAhead)
	if !ok || len(ra.added) != 2 || ra.added[0] != &c.evs[0] || ra.added[1] != &c.evs[1] {
		t.Fatalf("ProcessAhead got read-ahead %#v for %d events, want the batch's with both events", c.ahead, len(c.evs))
	}
	if err := p.Write(ctx, []event.Event{{Time: time.Unix(3, 0)}}); err != nil {
		t.Fatal(err)
	}
	if c := <-det.got; c.ahead != nil {
		t.Errorf("Write's batch has read-ahead %#v, want none", c.ahead)
	}
}
