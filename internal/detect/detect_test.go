package detect

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/event"
	"github.com/nocsoc/nocsoc/internal/sigma"
	"github.com/nocsoc/nocsoc/rules"
)

type sink struct {
	mu     sync.Mutex
	alerts []alert.Alert
}

func (s *sink) Fire(ctx context.Context, a alert.Alert) error {
	s.mu.Lock()
	s.alerts = append(s.alerts, a)
	s.mu.Unlock()
	return nil
}

func sshFailure(id uint64, t time.Time, ip, user string) event.Event {
	return event.Event{ID: id, Time: t, Host: "web1", Input: "test", Fields: map[string]any{
		"process.name": "sshd", "event.action": "ssh_login", "event.outcome": "failure", "event.category": "authentication",
		"source.ip": ip, "user.name": user, "message": fmt.Sprintf("Failed password for %s from %s port 22 ssh2", user, ip),
	}}
}

func TestBruteForceRaisesOneAlertPerSource(t *testing.T) {
	eng := builtinEngine(t)
	s := &sink{}
	d := New(Options{Engine: eng, Alerts: s})
	t0 := time.Date(2026, 5, 1, 3, 0, 0, 0, time.UTC)
	var evs []event.Event
	id := uint64(100)
	for i := 0; i < 12; i++ {
		for _, ip := range []string{"203.0.113.7", "198.51.100.23"} {
			id++
			evs = append(evs, sshFailure(id, t0.Add(time.Duration(i)*5*time.Second), ip, "root"))
		}
	}
	// One failure from a third source stays below the threshold.
	id++
	evs = append(evs, sshFailure(id, t0, "192.0.2.1", "admin"))
	if err := d.Process(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	bySource := map[string]alert.Alert{}
	for _, a := range s.alerts {
		if a.Labels["rule_id"] != "6b0f3c52-1d0e-4a53-9a51-0c1f7c2e0a04" {
			continue
		}
		if prev, dup := bySource[a.Labels["source.ip"]]; dup && prev.Fingerprint != a.Fingerprint {
			t.Errorf("two fingerprints for one source: %v / %v", prev.Labels, a.Labels)
		}
		bySource[a.Labels["source.ip"]] = a
	}
	if len(bySource) != 2 || bySource["203.0.113.7"].Title == "" || bySource["198.51.100.23"].Title == "" {
		t.Fatalf("brute-force alerts by source: %v (all: %d)", bySource, len(s.alerts))
	}
	a := bySource["203.0.113.7"]
	if a.Team != "soc" || a.Origin != "human" || a.Severity != "medium" || a.Annotations["author"] != "nocsoc" ||
		a.Labels["attack.technique"] != "T1110.001" || a.Annotations["event_ids"] == "" {
		t.Errorf("alert = %+v", a)
	}
	if d.Hits()["6b0f3c52-1d0e-4a53-9a51-0c1f7c2e0a04"] < 2 {
		t.Errorf("hits = %v", d.Hits())
	}
}

// batchSink records FireAll calls separately from single fires.
type batchSink struct {
	sink
	calls int
}

func (s *batchSink) FireAll(ctx context.Context, as []alert.Alert) error {
	s.mu.Lock()
	s.calls++
	s.alerts = append(s.alerts, as...)
	s.mu.Unlock()
	return nil
}

// TestBatchSinkGetsOneCallPerBatch: a sink that takes batches gets every
// alert of one Process call at once (one commit in the incident workflow),
// also when the call carries several batches of events, and the same
// alerts a single-alert sink gets one by one.
func TestBatchSinkGetsOneCallPerBatch(t *testing.T) {
	rs, errs := LoadRules(nil, rules.Builtin)
	if len(errs) > 0 {
		t.Fatalf("built-in rules: %v", errs)
	}
	eng, _ := sigma.Compile(rs, sigma.DefaultPipeline())
	eng2, _ := sigma.Compile(rs, sigma.DefaultPipeline())
	t0 := time.Date(2026, 5, 1, 3, 0, 0, 0, time.UTC)
	var evs []event.Event
	for i := range 30 {
		for j, ip := range []string{"203.0.113.7", "198.51.100.23", "192.0.2.44"} {
			evs = append(evs, sshFailure(uint64(i*3+j+1), t0.Add(time.Duration(i)*time.Second), ip, "root"))
		}
	}
	b, one := &batchSink{}, &sink{}
	if err := New(Options{Engine: eng, Alerts: b}).Process(context.Background(), evs[:40], evs[40:41], evs[41:]); err != nil {
		t.Fatal(err)
	}
	if err := New(Options{Engine: eng2, Alerts: one}).Process(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	if b.calls != 1 || len(b.alerts) == 0 || len(b.alerts) != len(one.alerts) {
		t.Fatalf("batch sink: %d calls, %d alerts; single sink: %d alerts", b.calls, len(b.alerts), len(one.alerts))
	}
	for i := range b.alerts {
		if b.alerts[i].Fingerprint != one.alerts[i].Fingerprint {
			t.Fatalf("alert %d differs: %v vs %v", i, b.alerts[i].Labels, one.alerts[i].Labels)
		}
	}
}
