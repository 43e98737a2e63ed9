package response

import "sync"

// commitFeed tells subscribers (the web console's live queue) which intake
// operations were just committed. It is separate from notifications: a
// subscriber also sees suppressed and deduplicated alerts.
type commitFeed struct {
	mu   sync.RWMutex
	next int
	subs map[int]func([]Outcome)
}

// Subscribe registers fn to be called once per committed intake batch with
// the outcomes of its operations, in order. fn runs on the intake goroutine
// while the service's lock is held, so it must be quick, must not block and
// must not call the service. The returned function unsubscribes; it is safe
// to call more than once.
func (s *Service) Subscribe(fn func([]Outcome)) (cancel func()) {
	f := &s.feed
	f.mu.Lock()
	if f.subs == nil {
		f.subs = map[int]func([]Outcome){}
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

func (f *commitFeed) notify(batch []*op) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if len(f.subs) == 0 {
		return
	}
	out := make([]Outcome, 0, len(batch))
	for _, p := range batch {
		if p.err == nil && p.Kind != OpDelivery {
			out = append(out, p.res)
		}
	}
	if len(out) == 0 {
		return
	}
	for _, fn := range f.subs {
		fn(out)
	}
}
