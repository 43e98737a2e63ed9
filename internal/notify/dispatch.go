package notify

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// DeliveryLog stores delivery attempts. The state store implements it.
type DeliveryLog interface {
	RecordDelivery(ctx context.Context, d Delivery) error
}

// Delivery statuses.
const (
	DeliverySent   = "sent"
	DeliveryFailed = "failed" // will be retried
	DeliveryDead   = "dead"   // the last attempt failed: the dead-letter list
)

// ErrQueueFull is returned by Enqueue when the queue has no room.
var ErrQueueFull = errors.New("notify: delivery queue is full")

// MaxBackoff caps the delay between two attempts.
const MaxBackoff = 5 * time.Minute

// DispatcherOptions configures a Dispatcher.
type DispatcherOptions struct {
	// Sender sends one attempt; *Sender is the real one.
	Sender interface {
		Send(ctx context.Context, ch Channel, m Message) (int, error)
	}
	// Log records every attempt; nil records nothing.
	Log DeliveryLog
	// Workers is the number of concurrent sends; default 8.
	Workers int
	// QueueSize bounds the messages waiting for a worker; default 10000.
	QueueSize int
	// MaxAttempts is the number of attempts before a message is dead;
	// default 5.
	MaxAttempts int
	// BaseBackoff is the delay before the second attempt; it doubles for
	// each further attempt, with ±20% jitter, capped at MaxBackoff.
	// Default 1s.
	BaseBackoff time.Duration
	// OnResult is called after every attempt (from a worker goroutine; it
	// must not block for long). The incident service puts failures on the
	// incident timeline.
	OnResult func(d Delivery, m Message)
	Logger   *slog.Logger
}

// DispatchStats counts the dispatcher's work since it was created.
type DispatchStats struct {
	// Queued messages wait for a worker; Retrying wait for their backoff
	// to end; InFlight are being sent.
	Queued   int `json:"queued"`
	Retrying int `json:"retrying"`
	InFlight int `json:"in_flight"`
	// Sent, Failed and Dead count attempts by outcome; Dropped counts
	// messages refused by Enqueue because the queue was full.
	Sent    int64 `json:"sent"`
	Failed  int64 `json:"failed"`
	Dead    int64 `json:"dead"`
	Dropped int64 `json:"dropped"`
}

type job struct {
	ch      Channel
	m       Message
	attempt int // attempts already made
}

// Dispatcher delivers messages through channels with a pool of workers,
// retrying failed attempts with exponential backoff. There is no batching:
// an idle worker picks a message up as soon as it is enqueued, so a page
// for a critical incident leaves at once.
type Dispatcher struct {
	o     DispatcherOptions
	log   *slog.Logger
	queue chan job
	// retry carries messages whose backoff has ended. It is unbuffered and
	// separate from queue so that a retry is never refused for lack of room.
	retry chan job

	inFlight, retrying          atomic.Int64
	sent, failed, dead, dropped atomic.Int64
}

// NewDispatcher returns a Dispatcher; call Run to start delivering.
func NewDispatcher(o DispatcherOptions) *Dispatcher {
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 10000
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.BaseBackoff <= 0 {
		o.BaseBackoff = time.Second
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Dispatcher{
		o:     o,
		log:   log.With("component", "notify"),
		queue: make(chan job, o.QueueSize),
		retry: make(chan job),
	}
}

// Enqueue queues m for delivery through ch without blocking. It returns
// ErrQueueFull, and counts a drop, when the queue has no room.
func (d *Dispatcher) Enqueue(ch Channel, m Message) error {
	select {
	case d.queue <- job{ch: ch, m: m}:
		return nil
	default:
		d.dropped.Add(1)
		d.log.Warn("notification dropped: queue full", "channel", ch.Name, "incident", m.IncidentID, "event", m.Event)
		return ErrQueueFull
	}
}

// Run delivers messages until ctx ends, then waits for the workers and
// returns nil. Messages still queued or waiting for a retry when ctx ends
// are not delivered (the queue lives in memory); their number is logged.
func (d *Dispatcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range d.o.Workers {
		wg.Go(func() { d.work(ctx) })
	}
	<-ctx.Done()
	wg.Wait()
	if n, r := len(d.queue), d.retrying.Load(); n > 0 || r > 0 {
		d.log.Warn("dispatcher stopped with undelivered notifications", "queued", n, "retrying", r)
	}
	return nil
}

func (d *Dispatcher) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-d.retry:
			d.attempt(ctx, j)
		case j := <-d.queue:
			d.attempt(ctx, j)
		}
	}
}

// attempt sends j once, records the attempt and schedules the next one.
func (d *Dispatcher) attempt(ctx context.Context, j job) {
	d.inFlight.Add(1)
	start := time.Now()
	status, err := d.o.Sender.Send(ctx, j.ch, j.m)
	latency := time.Since(start)
	d.inFlight.Add(-1)
	if err != nil && ctx.Err() != nil {
		// Shutting down: the attempt was cut short, not refused.
		d.log.Warn("notification abandoned at shutdown", "channel", j.ch.Name, "incident", j.m.IncidentID, "event", j.m.Event)
		return
	}
	j.attempt++
	del := Delivery{
		IncidentID: j.m.IncidentID,
		Channel:    j.ch.Name,
		Event:      j.m.Event,
		Attempt:    j.attempt,
		Status:     DeliverySent,
		HTTPStatus: status,
		LatencyMS:  float64(latency.Microseconds()) / 1000,
		Time:       start,
	}
	var retryIn time.Duration
	switch {
	case err == nil:
		d.sent.Add(1)
	case j.attempt >= d.o.MaxAttempts || IsPermanent(err):
		del.Status, del.Error = DeliveryDead, err.Error()
		d.dead.Add(1)
		d.log.Error("notification failed for good", "channel", j.ch.Name, "incident", j.m.IncidentID, "event", j.m.Event, "attempt", j.attempt, "err", err)
	default:
		del.Status, del.Error = DeliveryFailed, err.Error()
		d.failed.Add(1)
		retryIn = d.backoff(j.attempt)
		var he *HTTPError
		if errors.As(err, &he) && he.RetryAfter > retryIn {
			retryIn = min(he.RetryAfter, MaxBackoff)
		}
		d.log.Warn("notification failed, will retry", "channel", j.ch.Name, "incident", j.m.IncidentID, "event", j.m.Event, "attempt", j.attempt, "retry_in", retryIn, "err", err)
	}
	if d.o.Log != nil {
		// The record is written even while shutting down, so that the
		// delivery log stays complete.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := d.o.Log.RecordDelivery(rctx, del); err != nil {
			d.log.Error("record delivery", "channel", j.ch.Name, "incident", j.m.IncidentID, "err", err)
		}
		cancel()
	}
	if d.o.OnResult != nil {
		d.o.OnResult(del, j.m)
	}
	if del.Status == DeliveryFailed {
		d.schedule(ctx, j, retryIn)
	}
}

// backoff returns the delay after the given number of failed attempts:
// BaseBackoff·2^(attempts-1), ±20% jitter so that many messages failing
// together do not retry in lockstep, capped at MaxBackoff.
func (d *Dispatcher) backoff(attempts int) time.Duration {
	b := d.o.BaseBackoff
	for i := 1; i < attempts && b < MaxBackoff; i++ {
		b *= 2
	}
	b = time.Duration(float64(b) * (0.8 + 0.4*rand.Float64()))
	return min(b, MaxBackoff)
}

// schedule hands j back to the workers after delay. The waiting goroutine
// hands it to a free worker directly rather than competing for queue room,
// and gives up when ctx ends.
func (d *Dispatcher) schedule(ctx context.Context, j job, delay time.Duration) {
	d.retrying.Add(1)
	go func() {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		select {
		case d.retry <- j:
			d.retrying.Add(-1)
		case <-ctx.Done():
		}
	}()
}

// Stats returns the current counters.
func (d *Dispatcher) Stats() DispatchStats {
	return DispatchStats{
		Queued:   len(d.queue),
		Retrying: int(d.retrying.Load()),
		InFlight: int(d.inFlight.Load()),
		Sent:     d.sent.Load(),
		Failed:   d.failed.Load(),
		Dead:     d.dead.Load(),
		Dropped:  d.dropped.Load(),
	}
}
