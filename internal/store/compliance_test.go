package store

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestComplianceResultsHistory(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	ev := func(o string) json.RawMessage { return json.RawMessage(`[{"observed":"` + o + `"}]`) }
	rec := func(at time.Time, rs ...ComplianceResult) []ComplianceChange {
		t.Helper()
		ch, err := s.RecordComplianceResults(ctx, "ep1", rs, at)
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	ch := rec(t0, ComplianceResult{Check: "a", Policy: "p", Status: "pass", Evidence: ev("1"), CollectedAt: t0},
		ComplianceResult{Check: "b", Policy: "p", Status: "fail", Evidence: ev("x"), CollectedAt: t0})
	if len(ch) != 2 || ch[0].Previous != "" {
		t.Fatalf("first changes %+v", ch)
	}
	// Same statuses, new evidence on a: history row, no change.
	ch = rec(t0.Add(time.Hour), ComplianceResult{Check: "a", Policy: "p", Status: "pass", Evidence: ev("2"), CollectedAt: t0.Add(time.Hour)},
		ComplianceResult{Check: "b", Policy: "p", Status: "fail", Evidence: ev("x"), CollectedAt: t0.Add(time.Hour)})
	if len(ch) != 0 {
		t.Fatalf("unchanged statuses reported %+v", ch)
	}
	ch = rec(t0.Add(2*time.Hour), ComplianceResult{Check: "a", Policy: "p", Status: "fail", Evidence: ev("3"), CollectedAt: t0.Add(2 * time.Hour)},
		ComplianceResult{Check: "b", Policy: "p", Status: "fail", Evidence: ev("x"), CollectedAt: t0.Add(2 * time.Hour)})
	if len(ch) != 1 || ch[0].Previous != "pass" || ch[0].Result.Status != "fail" {
		t.Fatalf("drift %+v", ch)
	}
	cur, err := s.ComplianceState(ctx, ComplianceFilter{Endpoint: "ep1"})
	if err != nil || len(cur) != 2 {
		t.Fatal(cur, err)
	}
	if cur[1].Check != "b" || !cur[1].Since.Equal(t0) || !cur[1].EvaluatedAt.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("b since %v evaluated %v", cur[1].Since, cur[1].EvaluatedAt)
	}
	asOf, err := s.ComplianceAsOf(ctx, ComplianceFilter{Checks: []string{"a"}}, t0.Add(90*time.Minute))
	if err != nil || len(asOf) != 1 || asOf[0].Status != "pass" || string(asOf[0].Evidence) != string(ev("2")) {
		t.Fatalf("as of %+v %v", asOf, err)
	}
	hist, err := s.ComplianceHistory(ctx, ComplianceFilter{Endpoint: "ep1"}, t0, t0.Add(3*time.Hour), 0)
	if err != nil || len(hist) != 4 {
		t.Fatalf("history %d %v", len(hist), err)
	}
	trend, err := s.ComplianceTrend(ctx, "", t0, t0)
	if err != nil || len(trend) != 1 || trend[0].Fail != 2 || trend[0].Pass != 0 {
		t.Fatalf("trend %+v %v", trend, err)
	}
}

func TestComplianceExceptionsAudited(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	actor := Actor{Name: "alice"}
	before := auditCount(t, s)
	e, err := s.CreateComplianceException(ctx, actor, ComplianceException{Endpoint: "*", Check: "c", Owner: "o", Reason: "r",
		ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateComplianceException(ctx, actor, ComplianceException{ID: e.ID, Owner: "o2", Reason: "r2", ExpiresAt: time.Now().Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	r, err := s.RevokeComplianceException(ctx, actor, e.ID)
	if err != nil || r.RevokedAt == nil || r.Owner != "o2" {
		t.Fatal(r, err)
	}
	if _, err := s.RevokeComplianceException(ctx, actor, e.ID); !errors.Is(err, ErrConflict) {
		t.Errorf("second revoke: %v", err)
	}
	if _, err := s.RevokeComplianceException(ctx, actor, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown: %v", err)
	}
	if n := auditCount(t, s) - before; n != 3 {
		t.Errorf("%d audit entries, want 3", n)
	}
	if act, _ := s.ComplianceExceptions(ctx, false); len(act) != 0 {
		t.Errorf("active after revoke: %+v", act)
	}
	if all, _ := s.ComplianceExceptions(ctx, true); len(all) != 1 {
		t.Errorf("all: %+v", all)
	}
	created, err := s.PutCompliancePolicy(ctx, actor, CompliancePolicy{ID: "p", YAML: "a: 1"})
	if err != nil || !created {
		t.Fatal(created, err)
	}
	if created, err = s.PutCompliancePolicy(ctx, actor, CompliancePolicy{ID: "p", YAML: "a: 2"}); err != nil || created {
		t.Fatal(created, err)
	}
	if err := s.DeleteCompliancePolicy(ctx, actor, "p"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCompliancePolicy(ctx, actor, "p"); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}
	if n := auditCount(t, s) - before; n != 6 {
		t.Errorf("%d audit entries, want 6", n)
	}
}
