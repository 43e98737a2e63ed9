package main

import (
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nocsoc/nocsoc/internal/store"
)

func TestAuditVerify(t *testing.T) {
	data := t.TempDir()
	path := filepath.Join(data, "state.db")
	ctx := context.Background()
	st, err := store.Open(ctx, path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	actor := store.Actor{Name: "admin", Remote: "127.0.0.1"}
	if _, err := st.CreateUser(ctx, actor, store.User{Name: "alice", Role: "admin"}); err != nil {
		t.Fatal(err)
	}
	for i := range 9 {
		if err := st.AppendAudit(ctx, actor, "login", "user:admin", nil, map[string]int{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	code, out, errs := runCmd(t, "audit", "verify", "--data", data)
	if code != 0 || out != "audit log intact: 10 entries\n" {
		t.Fatalf("intact: exit %d, stdout %q, stderr %q", code, out, errs)
	}

	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DROP TRIGGER audit_no_update; UPDATE audit SET after = '{"i":42}' WHERE id = 6`); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCmd(t, "audit", "verify", "--data", data)
	if want := "audit log broken at entry 6: hash mismatch: entry content changed\n"; code != 1 || out != want {
		t.Errorf("tampered: exit %d, stdout %q, stderr %q; want exit 1, stdout %q", code, out, errs, want)
	}

	for _, tc := range []struct {
		args     []string
		code     int
		inStderr string
	}{
		{[]string{"audit"}, 2, "audit verify --data DIR"},
		{[]string{"audit", "verify", "--data", data, "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"audit", "verify", "--data", filepath.Join(data, "nope")}, 1, "no nocsoc data in"},
	} {
		code, _, errs := runCmd(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.inStderr) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d with %q", strings.Join(tc.args, " "), code, errs, tc.code, tc.inStderr)
		}
	}
}
