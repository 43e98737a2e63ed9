package detect

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/event"
	"github.com/nocsoc/nocsoc/internal/loadgen/loadgentest"
	"github.com/nocsoc/nocsoc/internal/sigma"
	"github.com/nocsoc/nocsoc/rules"
)

// compileEngine compiles the rules of dirs and the built-in ones.
func compileEngine(tb testing.TB, dirs []string) *sigma.Engine {
	tb.Helper()
	rs, errs := LoadRules(dirs, rules.Builtin)
	if len(errs) > 0 {
		tb.Fatalf("rules: %v", errs)
	}
	eng, cerrs := sigma.Compile(rs, sigma.DefaultPipeline())
	if len(cerrs) > 0 {
		tb.Fatalf("compile: %v", cerrs)
	}
	return eng
}

// builtinEngine compiles the built-in rules and correlations.
func builtinEngine(t *testing.T) *sigma.Engine { return compileEngine(t, nil) }

// matchKeys is each match as rule id, event index and group key.
func matchKeys(ms []sigma.Match) []string {
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%s@%d/%s", m.Rule.ID, m.EventIndex, m.GroupKey))
	}
	return out
}

// Reading ahead changes no match: the load generator's stream (sshd,
// sudo, web, firewall, postfix, so the built-in rules and correlations
// fire) through Match and through read-ahead batches of 1,000 gives the
// same matches, while the engine learns which fields to read ahead; a
// batch read ahead for another engine (a reload) is not used.
func TestAheadSameMatches(t *testing.T) {
	const n = 150_000 // past two choices of the fields read ahead
	evs := loadgentest.Events(t, loadgentest.Frames(t, n), n)
	plain, ahead := builtinEngine(t), builtinEngine(t)
	other := builtinEngine(t)
	initial := ahead.AheadFields()
	if len(initial) == 0 {
		t.Fatal("nothing read ahead at start; want the logsource fields")
	}
	var want, got []string
	for lo := 0; lo < n; lo += 1000 {
		batch := evs[lo:min(lo+1000, n)]
		b := ahead.NewAheadBatch(len(batch))
		if lo == 3000 {
			b = other.NewAheadBatch(len(batch)) // another engine's: ignored
		}
		for i := range batch {
			b.Add(&batch[i])
		}
		for i := range batch {
			e := &batch[i]
			want = append(want, matchKeys(plain.Match(e, e.Time))...)
			got = append(got, matchKeys(ahead.MatchAhead(e, b, i, e.Time))...)
		}
	}
	if len(want) == 0 {
		t.Fatal("the stream matched nothing; the test would prove nothing")
	}
	if !slices.Equal(got, want) {
		t.Fatalf("with read-ahead %d matches, without %d; first of each: %.5q / %.5q", len(got), len(want), got, want)
	}
	learned := ahead.AheadFields()
	// The built-in rules read source.ip for a fifth of this stream.
	if slices.Equal(learned, initial) || !slices.Contains(learned, "source.ip") {
		t.Errorf("fields read ahead after %d events: %q (at start %q); want source.ip among them", n, learned, initial)
	}
}

// ProcessAhead with the NewAhead of each batch raises what Process raises.
func TestProcessAhead(t *testing.T) {
	const n = 5000
	evs := loadgentest.Events(t, loadgentest.Frames(t, n), n)
	for i := range evs {
		evs[i].ID = uint64(i + 1)
	}
	var plain, ahead sink
	d1 := New(Options{Engine: builtinEngine(t), Alerts: &plain})
	d2 := New(Options{Engine: builtinEngine(t), Alerts: &ahead})
	var batches [][]event.Event
	var aheads []event.Ahead
	for lo := 0; lo < n; lo += 500 {
		batch := evs[lo : lo+500]
		a := d2.NewAhead(len(batch))
		for i := range batch {
			a.Add(&batch[i])
		}
		batches, aheads = append(batches, batch), append(aheads, a)
	}
	if err := d1.Process(context.Background(), batches...); err != nil {
		t.Fatal(err)
	}
	if err := d2.ProcessAhead(context.Background(), batches, aheads); err != nil {
		t.Fatal(err)
	}
	if len(plain.alerts) == 0 || len(ahead.alerts) != len(plain.alerts) {
		t.Fatalf("%d alerts read ahead, %d without (want the same, and some)", len(ahead.alerts), len(plain.alerts))
	}
	for i := range plain.alerts {
		if a, b := plain.alerts[i], ahead.alerts[i]; !reflect.DeepEqual(a, b) {
			t.Errorf("alert %d read ahead:\n%+v\nwant\n%+v", i, b, a)
		}
	}
	if New(Options{}).NewAhead(10) != nil {
		t.Error("NewAhead without an engine is not nil")
	}
}

// The ids of at least MaxRemembered recent events, and at most a quarter
// more, are kept, and each engine sequence still maps to its event's id.
func TestRememberedIDsBounded(t *testing.T) {
	d := New(Options{Engine: builtinEngine(t), Alerts: &sink{}, MaxRemembered: 8})
	for i := range 100 {
		evs := []event.Event{{ID: uint64(1000 + i), Time: time.Unix(int64(i), 0), Fields: map[string]any{"message": "x"}}}
		if err := d.Process(context.Background(), evs); err != nil {
			t.Fatal(err)
		}
		d.mu.Lock()
		n, base := len(d.ids), d.idBase
		newest := d.eventIDs(sigma.Match{EventIndex: i})
		oldest := d.eventIDs(sigma.Match{EventIndex: i - 7})
		gone := d.eventIDs(sigma.Match{EventIndex: i - 11})
		d.mu.Unlock()
		if n < min(i+1, 8) || n > 10 || base+n != i+1 {
			t.Fatalf("after %d events: %d ids kept from %d", i+1, n, base)
		}
		if !slices.Equal(newest, []uint64{uint64(1000 + i)}) || (i >= 7 && !slices.Equal(oldest, []uint64{uint64(1000 + i - 7)})) || len(gone) > 0 {
			t.Fatalf("after %d events: ids %v, %v, %v", i+1, newest, oldest, gone)
		}
	}
}
