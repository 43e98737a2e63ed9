package sigma

import (
	"slices"
	"testing"
	"time"
)

// readAheadAll makes eng read ahead every event field it knows (up to
// maxAhead), as if it had learned that all are read for most events.
func readAheadAll(t *testing.T, eng *Engine) {
	t.Helper()
	var fids []int32
	for id := range eng.fieldNames {
		fids = append(fids, int32(id))
	}
	if len(fids) > maxAhead {
		t.Fatalf("%d fields, more than maxAhead", len(fids))
	}
	eng.ahead.Store(eng.newAheadSet(fids))
}

// Every detection golden case gives the same result with its fields read
// ahead: absent, null and present values, nested maps, lists.
func TestAheadDetectionCases(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range detectionCases {
		eng := compileOne(t, "title: t\nid: x\nauthor: test\ndetection:\n"+indent(c.det, "  ")+"\n")
		readAheadAll(t, eng)
		b := eng.NewAheadBatch(len(c.events))
		for _, e := range c.events {
			b.Add(e)
		}
		for i, e := range c.events {
			if got := len(eng.MatchAhead(e, b, i, t0)) > 0; got != c.want[i] {
				t.Errorf("%s: event %d %v read ahead: match=%v, want %v", c.name, i, e, got, c.want[i])
			}
		}
	}
}

// The engine reads ahead the fields it read for at least one event in
// aheadShare over the last aheadWindow events, and stops reading ahead
// those it no longer reads.
func TestAheadLearnsFields(t *testing.T) {
	eng := compileOne(t, "title: t\nid: x\nauthor: test\ndetection:\n  sel: {Image: x}\n  other: {CommandLine: y}\n  condition: sel or other\n")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	run := func(ev MapEvent) {
		for range aheadWindow {
			eng.Match(ev, t0)
		}
	}
	// Image is read for every event; CommandLine only when Image does not
	// already match.
	run(MapEvent{"Image": "x"})
	if got := eng.AheadFields(); !slices.Contains(got, "Image") || slices.Contains(got, "CommandLine") {
		t.Fatalf("read ahead %q, want Image and not CommandLine", got)
	}
	run(MapEvent{"Image": "z"})
	if got := eng.AheadFields(); !slices.Contains(got, "Image") || !slices.Contains(got, "CommandLine") {
		t.Fatalf("read ahead %q, want Image and CommandLine", got)
	}
	// A batch started under the old choice is still read correctly.
	b := eng.NewAheadBatch(1)
	ev := MapEvent{"Image": "z", "CommandLine": "y"}
	b.Add(ev)
	run(MapEvent{"Image": "x"})
	if got := eng.AheadFields(); slices.Contains(got, "CommandLine") {
		t.Fatalf("read ahead %q after CommandLine was no longer read", got)
	}
	if len(eng.MatchAhead(ev, b, 0, t0)) != 1 {
		t.Error("an event read ahead under the previous choice of fields did not match")
	}
}
