package soc

import (
	"context"
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

func (d chanDetector) Process(_ context.Context, evs []event.Event) error {
	d <- evs
	return nil
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
