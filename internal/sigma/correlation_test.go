package sigma

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

const baseRules = `title: ssh failure
id: fail
name: ssh_fail
author: test
logsource: {product: linux, service: sshd}
detection:
  sel: {event.outcome: failure}
  condition: sel
---
title: ssh success
id: ok
name: ssh_ok
author: test
logsource: {product: linux, service: sshd}
detection:
  sel: {event.outcome: success}
  condition: sel
`

func sshEvent(outcome, ip, user string) MapEvent {
	return MapEvent{"event.dataset": "sshd", "event.outcome": outcome, "source.ip": ip, "user.name": user}
}

type timedEvent struct {
	at time.Duration
	ev MapEvent
}

func runTimeline(t *testing.T, src string, evs []timedEvent) (string, *Engine) {
	t.Helper()
	rules, errs := ParseRule("corr.yml", []byte(src))
	if len(errs) > 0 {
		t.Fatalf("parse: %v", errs)
	}
	eng, errs := Compile(rules, nil)
	if len(errs) > 0 {
		t.Fatalf("compile: %v", errs)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var out []string
	for _, te := range evs {
		for _, m := range eng.Match(te.ev, t0.Add(te.at)) {
			out = append(out, fmt.Sprintf("%s@%d[%s]%v", m.Rule.Title, m.EventIndex, m.GroupKey, m.Events))
		}
	}
	return strings.Join(out, " "), eng
}

func repeatEv(n int, start, step time.Duration, ev MapEvent) []timedEvent {
	var out []timedEvent
	for i := 0; i < n; i++ {
		out = append(out, timedEvent{start + time.Duration(i)*step, ev})
	}
	return out
}

func TestCorrelation(t *testing.T) {
	fail := func(ip, user string) MapEvent { return sshEvent("failure", ip, user) }
	ok := func(ip string) MapEvent { return sshEvent("success", ip, "bob") }
	cases := []struct {
		name string
		corr string
		evs  []timedEvent
		want string
	}{
		{"event_count fires at threshold", "type: event_count\n  rules: [fail]\n  group-by: [source.ip]\n  timespan: 5m\n  condition: {gte: 3}",
			repeatEv(4, 0, time.Minute, fail("1.1.1.1", "a")), "corr@2[source.ip=1.1.1.1][0 1 2]"},
		{"event_count groups separately", "type: event_count\n  rules: [ssh_fail]\n  group-by: [source.ip]\n  timespan: 5m\n  condition: {gte: 2}",
			[]timedEvent{{0, fail("1.1.1.1", "a")}, {1, fail("2.2.2.2", "a")}, {2, fail("1.1.1.1", "a")}}, "corr@2[source.ip=1.1.1.1][0 2]"},
		{"event_count window expiry uses event time", "type: event_count\n  rules: [fail]\n  group-by: [source.ip]\n  timespan: 5m\n  condition: {gte: 3}",
			repeatEv(4, 0, 3*time.Minute, fail("1.1.1.1", "a")), ""},
		{"event_count gt", "type: event_count\n  rules: [fail]\n  timespan: 5m\n  condition: {gt: 2}",
			repeatEv(3, 0, time.Second, fail("1.1.1.1", "a")), "corr@2[][0 1 2]"},
		{"value_count distinct users", "type: value_count\n  rules: [fail]\n  group-by: [source.ip]\n  timespan: 10m\n  condition: {field: user.name, gte: 3}",
			[]timedEvent{{0, fail("1.1.1.1", "a")}, {1, fail("1.1.1.1", "a")}, {2, fail("1.1.1.1", "b")}, {3, fail("1.1.1.1", "c")}}, "corr@3[source.ip=1.1.1.1][0 1 2 3]"},
		{"value_count repeated values do not count", "type: value_count\n  rules: [fail]\n  group-by: [source.ip]\n  timespan: 10m\n  condition: {field: user.name, gte: 2}",
			repeatEv(5, 0, time.Second, fail("1.1.1.1", "a")), ""},
		{"temporal any order", "type: temporal\n  rules: [fail, ok]\n  group-by: [source.ip]\n  timespan: 10m",
			[]timedEvent{{0, ok("1.1.1.1")}, {time.Minute, fail("1.1.1.1", "a")}}, "corr@1[source.ip=1.1.1.1][0 1]"},
		{"temporal outside window", "type: temporal\n  rules: [fail, ok]\n  group-by: [source.ip]\n  timespan: 10m",
			[]timedEvent{{0, ok("1.1.1.1")}, {11 * time.Minute, fail("1.1.1.1", "a")}}, ""},
		{"temporal_ordered in order", "type: temporal_ordered\n  rules: [fail, ok]\n  group-by: [source.ip]\n  timespan: 10m",
			[]timedEvent{{0, fail("1.1.1.1", "a")}, {time.Minute, ok("1.1.1.1")}}, "corr@1[source.ip=1.1.1.1][0 1]"},
		{"temporal_ordered wrong order", "type: temporal_ordered\n  rules: [fail, ok]\n  group-by: [source.ip]\n  timespan: 10m",
			[]timedEvent{{0, ok("1.1.1.1")}, {time.Minute, fail("1.1.1.1", "a")}}, ""},
		{"temporal_ordered other group", "type: temporal_ordered\n  rules: [fail, ok]\n  group-by: [source.ip]\n  timespan: 10m",
			[]timedEvent{{0, fail("1.1.1.1", "a")}, {time.Minute, ok("2.2.2.2")}}, ""},
		{"generate keeps base matches", "type: event_count\n  rules: [fail]\n  timespan: 5m\n  condition: {gte: 2}\n  generate: true",
			repeatEv(2, 0, time.Second, fail("1.1.1.1", "a")), "ssh failure@0[][] ssh failure@1[][] corr@1[][0 1]"},
	}
	var golden_ strings.Builder
	for _, c := range cases {
		src := baseRules + "---\ntitle: corr\nid: c1\nauthor: test\ncorrelation:\n  " + c.corr + "\n"
		got, _ := runTimeline(t, src, c.evs)
		if got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
		fmt.Fprintf(&golden_, "%s: %s\n", c.name, got)
	}
	golden(t, "testdata/correlation.golden", golden_.String())
}

func TestLegacyCount(t *testing.T) {
	src := `title: legacy
author: test
logsource: {product: linux, service: sshd}
timeframe: 5m
detection:
  sel: {event.outcome: failure}
  condition: sel | count() by source.ip > 2
---
title: legacy distinct
author: test
logsource: {product: linux, service: sshd}
timeframe: 5m
detection:
  sel: {event.outcome: failure}
  condition: sel | count(user.name) by source.ip >= 2
`
	evs := []timedEvent{
		{0, sshEvent("failure", "1.1.1.1", "a")},
		{time.Second, sshEvent("failure", "1.1.1.1", "a")},
		{2 * time.Second, sshEvent("failure", "1.1.1.1", "b")},
	}
	got, _ := runTimeline(t, src, evs)
	want := "legacy@2[source.ip=1.1.1.1][0 1 2] legacy distinct@2[source.ip=1.1.1.1][0 1 2]"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestCorrelationStateBounded(t *testing.T) {
	src := baseRules + "---\ntitle: corr\nid: c1\ncorrelation:\n  type: event_count\n  rules: [fail]\n  group-by: [source.ip]\n  timespan: 5m\n  condition: {gte: 100}\n"
	rules, _ := ParseRule("x.yml", []byte(src))
	eng, errs := Compile(rules, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	eng.SetMaxGroups(10)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 50; i++ {
		eng.Match(sshEvent("failure", fmt.Sprintf("10.0.0.%d", i), "a"), t0.Add(time.Duration(i)*time.Second))
	}
	st := eng.Stats()
	if st.Groups != 10 || st.GroupsEvicted != 40 {
		t.Errorf("groups=%d evicted=%d, want 10 and 40", st.Groups, st.GroupsEvicted)
	}
	// A tick by the wall clock alone prunes nothing: windows are in event
	// time, and no event has moved it on.
	eng.Tick(t0.Add(time.Hour))
	if st := eng.Stats(); st.Groups != 10 || st.WindowsExpired != 0 {
		t.Errorf("after a wall-clock tick: groups=%d expired=%d, want 10 and 0", st.Groups, st.WindowsExpired)
	}
	// An event far later moves event time on; the tick prunes the expired
	// windows.
	eng.Match(sshEvent("success", "10.9.9.9", "a"), t0.Add(time.Hour))
	eng.Tick(t0.Add(time.Hour))
	st = eng.Stats()
	if st.Groups != 0 || st.WindowsExpired != 10 {
		t.Errorf("after tick: groups=%d expired=%d, want 0 and 10", st.Groups, st.WindowsExpired)
	}
}

// TestCorrelationReplayOldLog: a log an hour old, replayed while the
// wall clock ticks, correlates exactly like a live one (the wall-clock
// tick once cut its windows short).
func TestCorrelationReplayOldLog(t *testing.T) {
	src := baseRules + "---\ntitle: corr\nid: c1\ncorrelation:\n  type: event_count\n  rules: [fail]\n  group-by: [source.ip]\n  timespan: 5m\n  condition: {gte: 5}\n"
	rules, _ := ParseRule("x.yml", []byte(src))
	eng, errs := Compile(rules, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	wall := t0.Add(time.Hour)
	fired := 0
	for i := range 5 {
		for _, m := range eng.Match(sshEvent("failure", "203.0.113.5", "a"), t0.Add(time.Duration(i)*time.Second)) {
			if m.Rule.ID == "c1" {
				fired++
			}
		}
		eng.Tick(wall) // the housekeeping tick between batches
	}
	if fired != 1 {
		t.Fatalf("replayed brute force fired %d times, want 1", fired)
	}
}

func TestSilence(t *testing.T) {
	src := `title: any
id: any
author: test
logsource: {product: linux}
detection:
  sel: {host.name|exists: true}
  condition: sel
---
title: silent
author: test
correlation:
  type: silence
  rules: [any]
  group-by: [host.name]
  timespan: 15m
`
	rules, errs := ParseRule("s.yml", []byte(src))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	eng, errs := Compile(rules, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := func(name string) MapEvent { return MapEvent{"host.name": name, "host.os.type": "linux"} }
	eng.Match(h("a"), t0)
	eng.Match(h("b"), t0.Add(10*time.Minute))
	if ms := eng.Tick(t0.Add(14 * time.Minute)); len(ms) != 0 {
		t.Errorf("early tick fired: %v", ms)
	}
	ms := eng.Tick(t0.Add(16 * time.Minute))
	if len(ms) != 1 || ms[0].GroupKey != "host.name=a" {
		t.Fatalf("tick at 16m: %+v", ms)
	}
	if ms := eng.Tick(t0.Add(17 * time.Minute)); len(ms) != 0 {
		t.Errorf("silence fired twice: %v", ms)
	}
	eng.Match(h("a"), t0.Add(20*time.Minute))
	ms = eng.Tick(t0.Add(36 * time.Minute))
	if len(ms) != 2 {
		t.Errorf("after re-arm: %+v", ms)
	}
}

// TestValueCountExpiry checks that value_count forgets values last seen
// before the window, including one that arrived out of order, and keeps a
// value seen again inside it (the group walks its values only once one may
// have expired).
func TestValueCountExpiry(t *testing.T) {
	src := baseRules + "---\ntitle: corr\nid: c1\nauthor: test\ncorrelation:\n  type: value_count\n  rules: [fail]\n  group-by: [source.ip]\n  timespan: 10m\n  condition: {field: user.name, gte: 3}\n"
	fail := func(user string) MapEvent { return sshEvent("failure", "1.1.1.1", user) }
	cases := []struct {
		name string
		evs  []timedEvent
		want string
	}{
		{"a value seen again stays", []timedEvent{{0, fail("a")}, {2 * time.Minute, fail("b")}, {9 * time.Minute, fail("a")}, {11 * time.Minute, fail("c")}},
			"corr@3[source.ip=1.1.1.1][1 2 3]"},
		{"values leave the window", []timedEvent{{0, fail("a")}, {time.Minute, fail("b")}, {12 * time.Minute, fail("c")}}, ""},
		{"an older event arriving late leaves first", []timedEvent{{5 * time.Minute, fail("a")}, {time.Minute, fail("b")}, {11*time.Minute + 30*time.Second, fail("c")}}, ""},
		{"distinct values inside the window", []timedEvent{{5 * time.Minute, fail("a")}, {4 * time.Minute, fail("b")}, {11 * time.Minute, fail("c")}},
			"corr@2[source.ip=1.1.1.1][1 0 2]"},
	}
	for _, c := range cases {
		if got, _ := runTimeline(t, src, c.evs); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}
