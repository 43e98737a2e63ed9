package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// t0 is the fixed "now" of every test store.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var admin = Actor{Name: "admin", Remote: "127.0.0.1"}

func openAt(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	s.now = func() time.Time { return t0 }
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func newStore(t testing.TB) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "state.db"))
}

func auditCount(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.r.QueryRow(`SELECT COUNT(*) FROM audit`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOpenAppliesMigrationsOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	ctx := context.Background()
	s := openAt(t, path)
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v != len(migrations) {
		t.Fatalf("schema version %d, want %d", v, len(migrations))
	}
	if _, err := s.CreateUser(ctx, admin, User{Name: "alice", Role: "admin"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopening is a no-op: same version, one row per migration, data kept.
	s2 := openAt(t, path)
	var rows int
	if err := s2.r.QueryRow(`SELECT COUNT(*) FROM schema_version`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != len(migrations) {
		t.Errorf("schema_version has %d rows, want %d", rows, len(migrations))
	}
	if n, err := s2.CountUsers(ctx); err != nil || n != 1 {
		t.Errorf("CountUsers after reopen = %d, %v; want 1", n, err)
	}

	var mode string
	if err := s2.r.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	var fk int
	if err := s2.w.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d, %v; want 1", fk, err)
	}
	var cache, ckpt int
	if err := s2.w.QueryRow(`PRAGMA cache_size`).Scan(&cache); err != nil || cache != -32768 {
		t.Errorf("writer cache_size = %d, %v; want -32768 (32 MiB)", cache, err)
	}
	if err := s2.w.QueryRow(`PRAGMA wal_autocheckpoint`).Scan(&ckpt); err != nil || ckpt != 8000 {
		t.Errorf("writer wal_autocheckpoint = %d, %v; want 8000", ckpt, err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openAt(t, path)
	if _, err := s.w.Exec(`INSERT INTO schema_version (version, applied_at) VALUES (?, 0)`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s2, err := Open(context.Background(), path, nil); err == nil {
		s2.Close()
		t.Fatal("Open of a newer schema succeeded")
	}
}

func TestMigrationErrorIsReported(t *testing.T) {
	// A table that migration 1 creates exists already in a fresh file:
	// the migration must fail loudly and leave no version row.
	fresh := filepath.Join(t.TempDir(), "fresh.db")
	db2, err := sql.Open("sqlite", fresh)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db2.Exec(`CREATE TABLE users (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	db2.Close()
	s, err := Open(context.Background(), fresh, nil)
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded although migration 1 cannot apply")
	}
	db3, err := sql.Open("sqlite", fresh)
	if err != nil {
		t.Fatal(err)
	}
	defer db3.Close()
	var n int
	if err := db3.QueryRow(`SELECT COUNT(*) FROM schema_version`).Scan(&n); err != nil || n != 0 {
		t.Errorf("schema_version rows = %d, %v; want 0", n, err)
	}
	var tables int
	if err := db3.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name = 'tokens'`).Scan(&tables); err != nil || tables != 0 {
		t.Errorf("partial migration left table tokens (%d, %v)", tables, err)
	}
}

// Two Store instances on one file stand for the server and the
// `nocsoc token create` CLI running at the same time.
func TestTwoStoresOnOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	ctx := context.Background()
	a := openAt(t, path)
	b := openAt(t, path)

	u, err := a.CreateUser(ctx, admin, User{Name: "alice", Role: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	// b sees a's write immediately.
	if got, err := b.UserByName(ctx, "alice"); err != nil || got.ID != u.ID {
		t.Fatalf("b.UserByName = %+v, %v", got, err)
	}

	// Both write concurrently: none fails with SQLITE_BUSY and alert dedup
	// holds across processes.
	const n = 25
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for i := range n {
		for _, s := range []*Store{a, b} {
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, _, err := s.OpenAlert(ctx, testAlert("shared"))
				errs <- err
			}()
			go func() {
				defer wg.Done()
				_, err := s.CreateToken(ctx, Actor{Name: "system"}, Token{UserID: u.ID, Name: tokenName(s, a, i),
					Hash: hashOf(tokenName(s, a, i)), Prefix: "nsc_abcd"})
				errs <- err
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent write: %v", err)
		}
	}
	got, err := b.ListAlerts(ctx, AlertFilter{Status: "firing"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Occurrences != 2*n {
		t.Errorf("firing alerts = %d (occurrences %v), want 1 with %d", len(got), got, 2*n)
	}
	toks, err := a.ListTokens(ctx, u.ID)
	if err != nil || len(toks) != 2*n {
		t.Errorf("tokens = %d, %v; want %d", len(toks), err, 2*n)
	}
}

func tokenName(s, a *Store, i int) string {
	if s == a {
		return fmt.Sprintf("a-%d", i)
	}
	return fmt.Sprintf("b-%d", i)
}

func TestOnWriteHook(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	var mu sync.Mutex
	ops := map[string]int{}
	s.OnWrite(func(op string, d time.Duration) {
		if d < 0 {
			t.Errorf("negative duration for %s", op)
		}
		mu.Lock()
		ops[op]++
		mu.Unlock()
	})
	if _, err := s.CreateUser(ctx, admin, User{Name: "bob", Role: "viewer"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.OpenAlert(ctx, testAlert("x")); err != nil {
		t.Fatal(err)
	}
	// A failing write is observed too.
	if _, err := s.CreateUser(ctx, admin, User{Name: "bob", Role: "viewer"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate CreateUser: %v", err)
	}
	s.OnWrite(nil)
	if _, _, err := s.OpenAlert(ctx, testAlert("y")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if ops["user.create"] != 2 || ops["alert.open"] != 1 {
		t.Errorf("observed ops %v, want user.create:2 alert.open:1", ops)
	}
}

func TestFieldErrorIsInvalid(t *testing.T) {
	err := error(&FieldError{Field: "name", Reason: "is required"})
	if !errors.Is(err, ErrInvalid) {
		t.Error("FieldError does not match ErrInvalid")
	}
	if err.Error() != "name: is required" {
		t.Errorf("Error() = %q", err.Error())
	}
}
