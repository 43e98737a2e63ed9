package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// TestPruneComplianceHistoryKeepsAnswers records a month of evaluations
// with random changes on several endpoints, then prunes at a cutoff in
// the middle: every as-of, history and trend question about a time at or
// after the cutoff answers exactly as before, the latest result of each
// endpoint and check survives, and what was older and superseded is gone.
func TestPruneComplianceHistoryKeepsAnswers(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	t0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(7, 11))
	statuses := []string{"pass", "fail", "error"}
	endpoints := []string{"ep1", "ep2", "ep3"}
	checks := []string{"a", "b", "c", "d"}
	cur := map[string]ComplianceResult{}
	var last time.Time
	for step := 0; step < 30*4; step++ { // every 6 hours for 30 days
		at := t0.Add(time.Duration(step) * 6 * time.Hour)
		last = at
		for _, ep := range endpoints {
			var rs []ComplianceResult
			for _, c := range checks {
				k := ep + "/" + c
				r, ok := cur[k]
				if !ok || rng.IntN(5) == 0 {
					r = ComplianceResult{Check: c, Policy: "p", Status: statuses[rng.IntN(len(statuses))],
						Evidence: json.RawMessage(fmt.Sprintf(`[{"observed":"%d"}]`, rng.IntN(3)))}
				}
				r.CollectedAt = at.Add(-time.Minute)
				cur[k] = r
				rs = append(rs, r)
			}
			if _, err := s.RecordComplianceResults(ctx, ep, rs, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	// One check that stopped changing long before the cutoff: its only
	// row is older than the cutoff and must stay.
	early := t0.Add(-48 * time.Hour)
	if _, err := s.RecordComplianceResults(ctx, "ep-quiet", []ComplianceResult{{Check: "a", Policy: "p", Status: "pass",
		Evidence: json.RawMessage(`[]`), CollectedAt: early}}, early); err != nil {
		t.Fatal(err)
	}

	cutoff := t0.Add(15*24*time.Hour + 3*time.Hour) // between two evaluations
	type answers struct {
		asOf  [][]ComplianceResult
		hist  []ComplianceResult
		trend []ComplianceTrendPoint
		state []ComplianceResult
	}
	var probes []time.Time
	for tt := cutoff; !tt.After(last.Add(6 * time.Hour)); tt = tt.Add(5 * time.Hour) {
		probes = append(probes, tt)
	}
	probes = append(probes, last)
	collect := func() answers {
		t.Helper()
		var a answers
		for _, p := range probes {
			r, err := s.ComplianceAsOf(ctx, ComplianceFilter{}, p)
			if err != nil {
				t.Fatal(err)
			}
			a.asOf = append(a.asOf, r)
		}
		var err error
		if a.hist, err = s.ComplianceHistory(ctx, ComplianceFilter{}, cutoff, last.Add(time.Hour), 100000); err != nil {
			t.Fatal(err)
		}
		if a.trend, err = s.ComplianceTrend(ctx, "", cutoff, last); err != nil {
			t.Fatal(err)
		}
		if a.state, err = s.ComplianceState(ctx, ComplianceFilter{}); err != nil {
			t.Fatal(err)
		}
		return a
	}
	before := collect()
	rowsBefore, err := s.ComplianceHistoryRows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oldTrend, err := s.ComplianceTrend(ctx, "", early, cutoff.AddDate(0, 0, -1))
	if err != nil || len(oldTrend) == 0 {
		t.Fatalf("trend before cutoff %d %v", len(oldTrend), err)
	}

	res, err := s.PruneComplianceHistory(ctx, cutoff)
	if err != nil {
		t.Fatal(err)
	}
	rowsAfter, err := s.ComplianceHistoryRows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.HistoryRows == 0 || rowsBefore-rowsAfter != res.HistoryRows {
		t.Fatalf("deleted %d history rows, counted %d → %d", res.HistoryRows, rowsBefore, rowsAfter)
	}
	if int(res.TrendRows) != len(oldTrend) {
		t.Errorf("trend rows deleted %d, want the %d points before the cutoff day", res.TrendRows, len(oldTrend))
	}
	after := collect()
	if !reflect.DeepEqual(before, after) {
		for i := range before.asOf {
			if !reflect.DeepEqual(before.asOf[i], after.asOf[i]) {
				t.Errorf("as of %v differs after pruning: %d rows before, %d after", probes[i], len(before.asOf[i]), len(after.asOf[i]))
			}
		}
		if !reflect.DeepEqual(before.hist, after.hist) || !reflect.DeepEqual(before.trend, after.trend) {
			t.Errorf("history or trend differs after pruning")
		}
		t.Fatal("answers changed by pruning")
	}
	// Exactly one row per endpoint and check remains at or before the
	// cutoff: the one in force there.
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT endpoint_id, check_id, COUNT(*) AS c FROM compliance_history
		WHERE at <= ? GROUP BY endpoint_id, check_id HAVING c > 1)`, ms(cutoff)).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d endpoint×check keep more than one row before the cutoff (%v)", n, err)
	}
	quiet, err := s.ComplianceAsOf(ctx, ComplianceFilter{Endpoint: "ep-quiet"}, last)
	if err != nil || len(quiet) != 1 || quiet[0].Status != "pass" || !quiet[0].Since.Equal(early) {
		t.Fatalf("quiet endpoint's only result was lost: %+v %v", quiet, err)
	}
	// Pruning again deletes nothing.
	res, err = s.PruneComplianceHistory(ctx, cutoff)
	if err != nil || res.HistoryRows != 0 || res.TrendRows != 0 {
		t.Fatalf("second prune %+v %v", res, err)
	}
}
