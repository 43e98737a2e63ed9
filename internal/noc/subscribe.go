package noc

import (
	"sync"

	"github.com/nocsoc/nocsoc/internal/monitor"
)

// changeFeed fans state changes out to subscribers (the web console's live
// updates). It is separate from the alert path: a subscriber sees every
// change of displayed state, including those that open no alert
// (unreachable, flapping, maintenance).
type changeFeed struct {
	mu   sync.RWMutex
	next int
	subs map[int]func(monitor.Outcome)
}

// Subscribe registers fn to be called with every outcome that changes a
// check's displayed state (Outcome.Changed), in the order results are
// applied. fn runs on the goroutine that reports the result, so it must be
// quick and must not block (hand the value to a buffered channel and drop
// when it is full). The returned function unsubscribes; it is safe to call
// more than once.
func (s *Service) Subscribe(fn func(monitor.Outcome)) (cancel func()) {
	f := &s.changes
	f.mu.Lock()
	if f.subs == nil {
		f.subs = map[int]func(monitor.Outcome){}
	}
	id := f.next
	f.next++
	f.subs[id] = fn
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		delete(f.subs, id)
		f.mu.Unlock()
	}
}

func (f *changeFeed) notify(o monitor.Outcome) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, fn := range f.subs {
		fn(o)
	}
}
