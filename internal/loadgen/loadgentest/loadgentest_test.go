package loadgentest

import "testing"

// The events are the generator's mix, every line parsed and normalized.
func TestEvents(t *testing.T) {
	const n = 2000
	evs := Events(t, Frames(t, n), n)
	if len(evs) != n {
		t.Fatalf("%d events, want %d", len(evs), n)
	}
	datasets := map[any]int{}
	for i, e := range evs {
		if e.Input != "syslog-tcp" || e.ParseError != "" {
			t.Fatalf("event %d: input %q, parse error %q", i, e.Input, e.ParseError)
		}
		datasets[e.Fields["event.dataset"]]++
	}
	for _, ds := range []string{"sshd", "nginx.access", "postfix", "cron"} {
		if datasets[ds] == 0 {
			t.Errorf("no %s events in %v", ds, datasets)
		}
	}
	Ingest(t, Frames(t, n), n)
}
