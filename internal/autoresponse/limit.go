package autoresponse

import (
	"fmt"
	"sync"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/config"
)

// defaultLimits bound each action kind so that a storm of false positives
// cannot block half the internet or isolate the fleet. Undo actions
// (unblock, release, unlock) are never limited.
var defaultLimits = map[string]config.RateLimit{
	KindBlockIP:     {Count: 60, Per: check.Duration(time.Minute)},
	KindIsolateHost: {Count: 1, Per: check.Duration(10 * time.Minute)},
	KindLockUser:    {Count: 5, Per: check.Duration(10 * time.Minute)},
	KindKillProcess: {Count: 20, Per: check.Duration(time.Minute)},
}

// limiter is a sliding-window counter per action kind on the service's
// clock.
type limiter struct {
	mu     sync.Mutex
	limits map[string]config.RateLimit
	recent map[string][]time.Time
}

func newLimiter(cfg map[string]config.RateLimit) *limiter {
	l := &limiter{limits: map[string]config.RateLimit{}, recent: map[string][]time.Time{}}
	for k, v := range defaultLimits {
		l.limits[k] = v
	}
	for k, v := range cfg {
		l.limits[k] = v
	}
	return l
}

// setLimits replaces the limits (config reload) and keeps the recent
// actions, so the new limits count what already happened.
func (l *limiter) setLimits(cfg map[string]config.RateLimit) {
	limits := map[string]config.RateLimit{}
	for k, v := range defaultLimits {
		limits[k] = v
	}
	for k, v := range cfg {
		limits[k] = v
	}
	l.mu.Lock()
	l.limits = limits
	l.mu.Unlock()
}

// allow takes one slot of kind at now; false and the limit when none is
// free.
func (l *limiter) allow(kind string, now time.Time) (bool, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.limits[kind]
	if !ok {
		return true, ""
	}
	per := lim.Per.D()
	keep := l.recent[kind][:0]
	for _, t := range l.recent[kind] {
		if now.Sub(t) < per {
			keep = append(keep, t)
		}
	}
	l.recent[kind] = keep
	if len(keep) >= lim.Count {
		return false, fmt.Sprintf("at most %d %s per %s", lim.Count, kind, per)
	}
	l.recent[kind] = append(keep, now)
	return true, ""
}

// record takes a slot of kind at now even when none is free (an action a
// person approved).
func (l *limiter) record(kind string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.limits[kind]; !ok {
		return
	}
	l.recent[kind] = append(l.recent[kind], now)
}
