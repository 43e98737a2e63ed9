package noc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/store"
)

// pushRegistry remembers the heartbeats of push checks. A push check is
// evaluated on its schedule: it fails when no successful heartbeat arrived
// within interval + grace (counted from the last success, or from when the
// check was registered if none ever arrived), or when the last heartbeat
// reported a failure.
type pushRegistry struct {
	now func() time.Time
	mu  sync.Mutex
	hb  map[string]*heartbeat
}

type heartbeat struct {
	registered  time.Time
	lastSuccess time.Time
	last        *check.Result
}

func newPushRegistry(now func() time.Time) *pushRegistry {
	return &pushRegistry{now: now, hb: map[string]*heartbeat{}}
}

func (p *pushRegistry) register(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.hb[name]; !ok {
		p.hb[name] = &heartbeat{registered: p.now()}
	}
}

func (p *pushRegistry) record(r check.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h, ok := p.hb[r.Check]
	if !ok {
		h = &heartbeat{registered: r.Time}
		p.hb[r.Check] = h
	}
	if r.OK {
		h.lastSuccess = r.Time
	}
	rc := r
	h.last = &rc
}

func (p *pushRegistry) evaluate(c check.Spec) check.Result {
	now := p.now()
	p.mu.Lock()
	h, ok := p.hb[c.Name]
	if !ok {
		h = &heartbeat{registered: now}
		p.hb[c.Name] = h
	}
	var last *check.Result
	if h.last != nil {
		lc := *h.last
		last = &lc
	}
	lastSuccess, registered := h.lastSuccess, h.registered
	p.mu.Unlock()

	var grace time.Duration
	if c.Push != nil {
		grace = c.Push.Grace.D()
	}
	deadline := c.Interval.D() + grace
	r := check.Result{Check: c.Name, Time: now}
	if last != nil && !last.OK && !last.Time.Before(lastSuccess) {
		r.Error = "last heartbeat reported failure"
		if last.Error != "" {
			r.Error += ": " + last.Error
		}
		r.Duration = last.Duration
		return r
	}
	base := lastSuccess
	if base.IsZero() {
		base = registered
	}
	if now.Sub(base) > deadline {
		when := "never"
		if !lastSuccess.IsZero() {
			when = lastSuccess.UTC().Format(time.RFC3339)
		}
		r.Error = fmt.Sprintf("no heartbeat within %s (interval %s + grace %s); last success: %s", deadline, c.Interval.D(), grace, when)
		return r
	}
	r.OK = true
	if last != nil {
		r.Duration = last.Duration
		r.Detail = last.Detail
	} else {
		r.Detail = "waiting for the first heartbeat"
	}
	return r
}

// Heartbeat is a ping received on a push URL.
type Heartbeat struct {
	Token    string
	OK       bool
	Duration time.Duration
	Message  string
}

// ErrUnknownPushToken is returned for a heartbeat whose token matches no
// push check.
var ErrUnknownPushToken = errors.New("unknown push token")

// Heartbeat records a heartbeat and applies it at once, so a reported
// failure or a recovery is seen without waiting for the schedule.
func (s *Service) Heartbeat(ctx context.Context, hb Heartbeat) (string, error) {
	name, err := s.st.PushCheckByTokenHash(ctx, auth.HashToken(hb.Token))
	if errors.Is(err, store.ErrNotFound) {
		return "", ErrUnknownPushToken
	}
	if err != nil {
		return "", err
	}
	spec, ok := s.Spec(name)
	if !ok || spec.Type != check.TypePush {
		return "", ErrUnknownPushToken
	}
	r := check.Result{Check: name, Time: s.now(), OK: hb.OK, Duration: hb.Duration}
	if len(hb.Message) > 1024 {
		hb.Message = hb.Message[:1024]
	}
	if hb.OK {
		r.Detail = hb.Message
	} else {
		r.Error = hb.Message
		if r.Error == "" {
			r.Error = "heartbeat reported failure"
		}
	}
	s.push.record(r)
	s.report(r)
	return name, nil
}
