package store

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"
)

func TestAppendAndListAudit(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	clock := t0
	s.now = func() time.Time { return clock }
	type rec struct {
		actor, action, target string
	}
	recs := []rec{
		{"alice", "login", "user:alice"},
		{"bob", "login", "user:bob"},
		{"alice", "export", "evidence"},
		{"token:ci", "login", "user:ci"},
		{"alice", "login", "user:alice"},
	}
	for _, r := range recs {
		if err := s.AppendAudit(ctx, Actor{Name: r.actor, Remote: "::1"}, r.action, r.target, nil, map[string]int{"n": 1}); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(time.Minute)
	}
	for _, tc := range []struct {
		name    string
		f       AuditFilter
		wantIdx []int // indexes into recs, newest first
	}{
		{"all", AuditFilter{}, []int{4, 3, 2, 1, 0}},
		{"actor", AuditFilter{Actor: "alice"}, []int{4, 2, 0}},
		{"action", AuditFilter{Action: "login"}, []int{4, 3, 1, 0}},
		{"target", AuditFilter{Target: "user:alice"}, []int{4, 0}},
		{"actor and action", AuditFilter{Actor: "alice", Action: "login"}, []int{4, 0}},
		{"from", AuditFilter{From: t0.Add(3 * time.Minute)}, []int{4, 3}},
		{"to", AuditFilter{To: t0.Add(2 * time.Minute)}, []int{1, 0}},
		{"limit", AuditFilter{Limit: 2}, []int{4, 3}},
		{"nothing", AuditFilter{Actor: "mallory"}, nil},
	} {
		got, err := s.ListAudit(ctx, tc.f)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(got) != len(tc.wantIdx) {
			t.Errorf("%s: %d entries, want %d", tc.name, len(got), len(tc.wantIdx))
			continue
		}
		for i, idx := range tc.wantIdx {
			r := recs[idx]
			g := got[i]
			if g.Actor != r.actor || g.Action != r.action || g.Target != r.target || !g.Time.Equal(t0.Add(time.Duration(idx)*time.Minute)) {
				t.Errorf("%s[%d] = %+v, want %+v", tc.name, i, g, r)
			}
		}
	}

	// Keyset pagination walks every entry exactly once.
	var seen []int64
	f := AuditFilter{Limit: 2}
	for {
		page, err := s.ListAudit(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			seen = append(seen, e.ID)
		}
		f.BeforeID = page[len(page)-1].ID
	}
	if len(seen) != len(recs) {
		t.Errorf("paged through %d entries, want %d", len(seen), len(recs))
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] >= seen[i-1] {
			t.Errorf("ids not strictly descending: %v", seen)
		}
	}
	if got, _ := s.ListAudit(ctx, AuditFilter{Limit: 1}); string(got[0].After) != `{"n":1}` || got[0].Before != nil || got[0].Remote != "::1" {
		t.Errorf("entry = %+v", got[0])
	}
}

func TestAppendAuditRejects(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		actor  Actor
		action string
		after  any
	}{
		{"no actor", Actor{}, "login", nil},
		{"blank actor", Actor{Name: "  "}, "login", nil},
		{"no action", admin, "", nil},
		{"unencodable", admin, "x", func() {}},
	} {
		if err := s.AppendAudit(ctx, tc.actor, tc.action, "", nil, tc.after); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if n := auditCount(t, s); n != 0 {
		t.Errorf("%d audit rows after rejected appends", n)
	}
}

// The log is append-only even for code that bypasses the store's methods.
func TestAuditIsAppendOnly(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if err := s.AppendAudit(ctx, admin, "login", "user:admin", nil, nil); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE audit SET actor = 'mallory'`, `DELETE FROM audit`} {
		if _, err := s.w.ExecContext(ctx, q); err == nil {
			t.Errorf("%s succeeded", q)
		}
	}
	if got, _ := s.ListAudit(ctx, AuditFilter{}); len(got) != 1 || got[0].Actor != "admin" {
		t.Errorf("audit changed: %+v", got)
	}
}

// A change that fails after its audit entry was written leaves neither.
func TestAuditRolledBackWithChange(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	boom := errors.New("boom")
	err := s.write(ctx, "test", func(tx *sql.Tx) error {
		if err := s.audit(ctx, tx, admin, "user.create", "user:x", nil, nil); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (name, role, created_at) VALUES ('x', 'viewer', 0)`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("write = %v", err)
	}
	if n := auditCount(t, s); n != 0 {
		t.Errorf("%d audit rows survived a failed change", n)
	}
	if n, _ := s.CountUsers(ctx); n != 0 {
		t.Errorf("%d users survived a failed change", n)
	}
}
