package ui

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Event is one Server-Sent Event. Name is the event type the browser
// listens for ("check"); Data is its payload, normally one line of JSON.
type Event struct {
	Name string
	Data []byte
}

// subscriberBuffer is how many events an open console may fall behind
// before it is disconnected. A disconnected browser reconnects at once
// (EventSource does so by itself) and reloads the current view, so a slow
// client costs a refresh, never a silently missed change.
const subscriberBuffer = 64

// Hub fans events out to every open event stream. Publish never blocks:
// the NOC calls it from the goroutine that applies check results.
type Hub struct {
	mu      sync.Mutex
	subs    map[chan Event]struct{}
	closed  bool
	dropped uint64
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{subs: map[chan Event]struct{}{}} }

// Subscribe returns a channel of events and a function that unsubscribes.
// The channel is closed when the hub closes or when the subscriber fell
// more than subscriberBuffer events behind.
func (h *Hub) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, subscriberBuffer)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(ch)
		return ch, func() {}
	}
	h.subs[ch] = struct{}{}
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
	}
}

// Publish sends e to every subscriber without waiting; a subscriber whose
// buffer is full is disconnected (see subscriberBuffer).
func (h *Hub) Publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- e:
		default:
			delete(h.subs, ch)
			close(ch)
			h.dropped++
		}
	}
}

// Stats returns the number of open subscribers and how many were
// disconnected for falling behind.
func (h *Hub) Stats() (subscribers int, dropped uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs), h.dropped
}

// Close disconnects every subscriber; later subscribers get a closed
// channel. It is safe to call more than once.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for ch := range h.subs {
		delete(h.subs, ch)
		close(ch)
	}
}

// keepAlive is how often an idle stream sends a comment, so proxies and
// load balancers do not close it for inactivity.
const keepAlive = 25 * time.Second

// serveStream streams the hub's events to one browser until it goes away
// or the hub closes.
func (h *Hub) serveStream(w http.ResponseWriter, r *http.Request) error {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	// Tell nginx-style proxies not to buffer the stream.
	w.Header().Set("X-Accel-Buffering", "no")
	events, cancel := h.Subscribe()
	defer cancel()
	w.WriteHeader(http.StatusOK)
	// retry sets the browser's reconnect delay; the comment opens the
	// stream at once so the browser fires "open".
	if _, err := fmt.Fprint(w, "retry: 2000\n: connected\n\n"); err != nil {
		return nil
	}
	if err := rc.Flush(); err != nil {
		return fmt.Errorf("event stream: flush: %w", err)
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	var buf bytes.Buffer
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
		case e, ok := <-events:
			if !ok {
				return nil
			}
			buf.Reset()
			writeEvent(&buf, e)
			if _, err := w.Write(buf.Bytes()); err != nil {
				return nil // the browser went away
			}
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
	}
}

// writeEvent formats e in the text/event-stream format. Each line of Data
// becomes its own data: field, so a payload with newlines cannot end the
// event early or inject fields.
func writeEvent(buf *bytes.Buffer, e Event) {
	if e.Name != "" {
		buf.WriteString("event: ")
		buf.WriteString(sanitizeLine(e.Name))
		buf.WriteByte('\n')
	}
	// The format ends a line at \r, \n or \r\n.
	data := bytes.ReplaceAll(e.Data, []byte("\r\n"), []byte("\n"))
	data = bytes.ReplaceAll(data, []byte("\r"), []byte("\n"))
	for _, line := range bytes.Split(data, []byte("\n")) {
		buf.WriteString("data: ")
		buf.Write(line)
		buf.WriteByte('\n')
	}
	buf.WriteByte('\n')
}

func sanitizeLine(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '\n' || c == '\r' {
			b[i] = ' '
		}
	}
	return string(b)
}
