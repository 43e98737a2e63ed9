package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawDB opens the store's file with a plain database/sql connection, the
// way someone with write access to the data directory could.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// chainedStore returns a store at a file path with audit entries written
// by several store methods, concurrently in part, and the number written.
func chainedStore(t *testing.T) (*Store, string, int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	s := openAt(t, path)
	ctx := context.Background()
	clock := t0
	var mu sync.Mutex
	s.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(time.Second)
		return clock
	}
	u, err := s.CreateUser(ctx, admin, User{Name: "alice", Role: "admin", PasswordHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateToken(ctx, admin, Token{UserID: u.ID, Name: "ci", Hash: strings.Repeat("ab", 32), Prefix: "nsc_abcd", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRuleDisabled(ctx, admin, "ssh-brute-force", true); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 5 {
				if err := s.AppendAudit(ctx, Actor{Name: fmt.Sprintf("user%d", i), Remote: "::1"}, "login", "", nil, map[string]int{"j": j}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := s.Batch(ctx, func(tx *Tx) error {
		return tx.Audit(Actor{Name: "system"}, "batch", "x", map[string]string{"a": "b"}, nil)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, Actor{Name: "token:ci"}, User{Name: "bob", Role: "viewer"}); err != nil {
		t.Fatal(err)
	}
	return s, path, auditCount(t, s)
}

func TestAuditChainVerifies(t *testing.T) {
	s, _, n := chainedStore(t)
	ctx := context.Background()
	if n < 45 {
		t.Fatalf("only %d audit entries written", n)
	}
	res, err := s.VerifyAudit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res != (VerifyResult{Entries: n}) || !res.Intact() {
		t.Fatalf("VerifyAudit = %+v, want intact with %d entries", res, n)
	}
	if got, want := res.String(), fmt.Sprintf("audit log intact: %d entries", n); got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	es, err := s.ListAudit(ctx, AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	// Newest first: each entry links to the next one in the slice.
	for i, e := range es {
		want := GenesisHash
		if i+1 < len(es) {
			want = es[i+1].Hash
		}
		if e.PrevHash != want || len(e.Hash) != 64 {
			t.Fatalf("entry %d: prev_hash %q hash %q, want prev_hash %q", e.ID, e.PrevHash, e.Hash, want)
		}
	}
}

// The hash follows the documented encoding (docs/compliance.md), built
// here independently so that a change to it fails.
func TestAuditHashEncoding(t *testing.T) {
	var b bytes.Buffer
	i64 := func(v int64) { binary.Write(&b, binary.BigEndian, v) } //nolint:errcheck // bytes.Buffer
	str := func(s string) { b.WriteByte(1); i64(int64(len(s))); b.WriteString(s) }
	b.WriteString("nocsoc-audit-v1\x00")
	i64(7)
	i64(1772366400000)
	str("alice")
	str("")
	str("user.create")
	str("user:bob")
	b.WriteByte(0) // before NULL
	str(`{"name":"bob"}`)
	str(GenesisHash)
	sum := sha256.Sum256(b.Bytes())
	want := hex.EncodeToString(sum[:])
	r := auditRow{id: 7, time: 1772366400000, actor: "alice", action: "user.create", target: "user:bob",
		after: sql.NullString{String: `{"name":"bob"}`, Valid: true}}
	if got := auditHash(r, GenesisHash); got != want {
		t.Errorf("auditHash = %s, want %s", got, want)
	}
	// NULL and empty are different content.
	r.before = sql.NullString{Valid: true}
	if auditHash(r, GenesisHash) == want {
		t.Error("empty before hashes like NULL before")
	}
}

func TestVerifyAuditFindsTampering(t *testing.T) {
	for _, tc := range []struct {
		name string
		// sql is run with the append-only triggers dropped; %d is the
		// id of a middle entry, k.
		sql        []string
		wantBroken func(k, n int64) int64
		wantReason func(k, n int64) string
	}{
		{"after changed", []string{`UPDATE audit SET after = '{"j":99}' WHERE id = %d`},
			func(k, n int64) int64 { return k }, func(k, n int64) string { return "hash mismatch: entry content changed" }},
		{"actor changed", []string{`UPDATE audit SET actor = 'mallory' WHERE id = %d`},
			func(k, n int64) int64 { return k }, func(k, n int64) string { return "hash mismatch: entry content changed" }},
		{"time changed", []string{`UPDATE audit SET time = time + 1 WHERE id = %d`},
			func(k, n int64) int64 { return k }, func(k, n int64) string { return "hash mismatch: entry content changed" }},
		{"before set from NULL to empty", []string{`UPDATE audit SET before = '' WHERE id = %d AND before IS NULL`},
			func(k, n int64) int64 { return k }, func(k, n int64) string { return "hash mismatch: entry content changed" }},
		{"hash cleared", []string{`UPDATE audit SET hash = NULL WHERE id = %d`},
			func(k, n int64) int64 { return k }, func(k, n int64) string { return "hash mismatch: entry content changed" }},
		{"row deleted in the middle", []string{`DELETE FROM audit WHERE id = %d`},
			func(k, n int64) int64 { return k }, func(k, n int64) string { return fmt.Sprintf("entry ids not contiguous: %d missing", k) }},
		{"first row deleted", []string{`DELETE FROM audit WHERE id = 1`},
			func(k, n int64) int64 { return 1 }, func(k, n int64) string { return "entry ids not contiguous: 1 missing" }},
		{"last rows cut off", []string{`DELETE FROM audit WHERE id > %d`},
			func(k, n int64) int64 { return k + 1 }, func(k, n int64) string { return fmt.Sprintf("entry ids not contiguous: %d missing", k+1) }},
		// Rewriting an entry together with its own hash moves the break
		// to the next entry, whose prev_hash no longer matches.
		{"entry rewritten with a valid hash", nil,
			func(k, n int64) int64 { return k + 1 }, func(k, n int64) string { return fmt.Sprintf("prev_hash does not match entry %d", k) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, path, n := chainedStore(t)
			ctx := context.Background()
			k := int64(n / 2)
			db := rawDB(t, path)
			if _, err := db.Exec(`DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete`); err != nil {
				t.Fatal(err)
			}
			for _, q := range tc.sql {
				if strings.Contains(q, "%d") {
					q = fmt.Sprintf(q, k)
				}
				res, err := db.Exec(q)
				if err != nil {
					t.Fatal(err)
				}
				if c, _ := res.RowsAffected(); c == 0 {
					t.Fatalf("%s changed no row", q)
				}
			}
			if tc.name == "entry rewritten with a valid hash" {
				rewriteWithValidHash(t, db, k)
			}
			got, err := s.VerifyAudit(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := VerifyResult{Entries: got.Entries, FirstBroken: tc.wantBroken(k, int64(n)), Reason: tc.wantReason(k, int64(n))}
			if got != want || got.Intact() {
				t.Errorf("VerifyAudit = %+v, want %+v", got, want)
			}
			if s := got.String(); s != fmt.Sprintf("audit log broken at entry %d: %s", want.FirstBroken, want.Reason) {
				t.Errorf("String = %q", s)
			}
		})
	}
}

// rewriteWithValidHash changes entry id's actor and recomputes its hash,
// as an attacker who knows the scheme would.
func rewriteWithValidHash(t *testing.T, db *sql.DB, id int64) {
	t.Helper()
	var r auditRow
	var prev string
	if err := db.QueryRow(`SELECT id, time, actor, remote, action, target, before, after, prev_hash FROM audit WHERE id = ?`, id).
		Scan(&r.id, &r.time, &r.actor, &r.remote, &r.action, &r.target, &r.before, &r.after, &prev); err != nil {
		t.Fatal(err)
	}
	r.actor = "mallory"
	if _, err := db.Exec(`UPDATE audit SET actor = ?, hash = ? WHERE id = ?`, r.actor, auditHash(r, prev), id); err != nil {
		t.Fatal(err)
	}
}

func TestAuditChainMigrationConstant(t *testing.T) {
	if !strings.Contains(migrations[auditChainVersion-1], "prev_hash") {
		t.Fatalf("migration %d does not add prev_hash: auditChainVersion is stale", auditChainVersion)
	}
}

// A database created before the chain existed gets it filled in by the
// migration, with the hashes the store would have written itself, and
// stays append-only.
func TestAuditChainBackfill(t *testing.T) {
	ctx := context.Background()
	old := filepath.Join(t.TempDir(), "state.db")
	db := rawDB(t, old)
	if _, err := db.Exec(`CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for v := 1; v < auditChainVersion; v++ {
		if _, err := db.Exec(migrations[v-1]); err != nil {
			t.Fatalf("migration %d: %v", v, err)
		}
		if _, err := db.Exec(`INSERT INTO schema_version VALUES (?, 0)`, v); err != nil {
			t.Fatal(err)
		}
	}
	const entries = 25
	for i := range entries {
		var after any
		if i%3 != 0 {
			after = fmt.Sprintf(`{"n":%d}`, i)
		}
		if _, err := db.Exec(`INSERT INTO audit (time, actor, remote, action, target, after) VALUES (?, 'admin', '127.0.0.1', 'login', 'user:admin', ?)`,
			ms(t0), after); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s := openAt(t, old)
	res, err := s.VerifyAudit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res != (VerifyResult{Entries: entries}) {
		t.Fatalf("after backfill: %+v", res)
	}

	// The same entries written by the store hash the same.
	fresh := newStore(t)
	for i := range entries {
		var after any
		if i%3 != 0 {
			after = map[string]int{"n": i}
		}
		if err := fresh.AppendAudit(ctx, admin, "login", "user:admin", nil, after); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := s.ListAudit(ctx, AuditFilter{})
	want, _ := fresh.ListAudit(ctx, AuditFilter{})
	if len(got) != entries || len(want) != entries {
		t.Fatalf("%d and %d entries", len(got), len(want))
	}
	for i := range got {
		if got[i].Hash != want[i].Hash || got[i].PrevHash != want[i].PrevHash {
			t.Errorf("entry %d: backfilled %s/%s, written %s/%s", got[i].ID, got[i].PrevHash, got[i].Hash, want[i].PrevHash, want[i].Hash)
		}
	}

	// New entries continue the chain; the log is still append-only.
	if err := s.AppendAudit(ctx, admin, "export", "evidence", nil, nil); err != nil {
		t.Fatal(err)
	}
	if res, err := s.VerifyAudit(ctx); err != nil || res != (VerifyResult{Entries: entries + 1}) {
		t.Errorf("after append: %+v %v", res, err)
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE audit SET actor = 'mallory' WHERE id = 1`); err == nil {
		t.Error("UPDATE audit succeeded after the migration")
	}
}
