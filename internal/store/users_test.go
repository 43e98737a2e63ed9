package store

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const fakeHash = "$argon2id$v=19$m=65536,t=2,p=2$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"

func TestCreateUserAndLookups(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if n, err := s.CountUsers(ctx); err != nil || n != 0 {
		t.Fatalf("CountUsers = %d, %v", n, err)
	}
	u, err := s.CreateUser(ctx, admin, User{Name: "alice", Role: "admin", PasswordHash: fakeHash})
	if err != nil {
		t.Fatal(err)
	}
	if u.ID == 0 || !u.CreatedAt.Equal(t0) {
		t.Errorf("created %+v: want an id and CreatedAt %v", u, t0)
	}
	for name, get := range map[string]func() (User, error){
		"by name":       func() (User, error) { return s.UserByName(ctx, "alice") },
		"by name, case": func() (User, error) { return s.UserByName(ctx, "ALICE") },
		"by id":         func() (User, error) { return s.UserByID(ctx, u.ID) },
	} {
		got, err := get()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got != u {
			t.Errorf("%s: got %+v, want %+v", name, got, u)
		}
	}
	if _, err := s.CreateUser(ctx, admin, User{Name: "bob", Role: "viewer"}); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListUsers(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "alice" || list[1].Name != "bob" {
		t.Errorf("ListUsers = %+v, %v", list, err)
	}
	if n, err := s.CountUsers(ctx); err != nil || n != 2 {
		t.Errorf("CountUsers = %d, %v; want 2", n, err)
	}
	if _, err := s.UserByName(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("UserByName(nobody) = %v, want ErrNotFound", err)
	}
	if _, err := s.UserByID(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("UserByID(999) = %v, want ErrNotFound", err)
	}

	// The audit entry exists and never holds the password hash.
	entries, err := s.ListAudit(ctx, AuditFilter{Action: "user.create", Target: "user:alice"})
	if err != nil || len(entries) != 1 {
		t.Fatalf("audit = %+v, %v", entries, err)
	}
	e := entries[0]
	if e.Actor != "admin" || e.Remote != "127.0.0.1" || e.Before != nil || !e.Time.Equal(t0) {
		t.Errorf("audit entry %+v", e)
	}
	if strings.Contains(string(e.After), "argon2") || strings.Contains(string(e.After), "password") {
		t.Errorf("audit after leaks the password hash: %s", e.After)
	}
	var after User
	if err := json.Unmarshal(e.After, &after); err != nil || after.Name != "alice" || after.Role != "admin" {
		t.Errorf("audit after = %s (%v)", e.After, err)
	}
}

func TestCreateUserRejects(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if _, err := s.CreateUser(ctx, admin, User{Name: "alice", Role: "admin"}); err != nil {
		t.Fatal(err)
	}
	before := auditCount(t, s)
	for _, tc := range []struct {
		name  string
		actor Actor
		u     User
		want  error
		field string
	}{
		{"duplicate", admin, User{Name: "alice", Role: "viewer"}, ErrConflict, ""},
		{"duplicate other case", admin, User{Name: "Alice", Role: "viewer"}, ErrConflict, ""},
		{"empty name", admin, User{Role: "viewer"}, ErrInvalid, "name"},
		{"bad name", admin, User{Name: "a b", Role: "viewer"}, ErrInvalid, "name"},
		{"bad role", admin, User{Name: "carol", Role: "root"}, ErrInvalid, "role"},
		{"no actor", Actor{}, User{Name: "dave", Role: "viewer"}, ErrInvalid, "actor"},
	} {
		_, err := s.CreateUser(ctx, tc.actor, tc.u)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
			continue
		}
		var fe *FieldError
		if tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field) {
			t.Errorf("%s: err = %v, want field %q", tc.name, err, tc.field)
		}
	}
	// Nothing changed: no new users (the no-actor insert was rolled back)
	// and no audit rows.
	if n, _ := s.CountUsers(ctx); n != 1 {
		t.Errorf("CountUsers = %d, want 1", n)
	}
	if got := auditCount(t, s); got != before {
		t.Errorf("audit rows %d, want %d", got, before)
	}
}

func TestSetPasswordRoleDisabledDelete(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	root, err := s.CreateUser(ctx, admin, User{Name: "root", Role: "admin", PasswordHash: "old"})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := s.CreateUser(ctx, admin, User{Name: "bob", Role: "viewer", PasswordHash: "old"})
	if err != nil {
		t.Fatal(err)
	}

	if err := s.SetPassword(ctx, admin, bob.ID, fakeHash); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.UserByID(ctx, bob.ID); u.PasswordHash != fakeHash {
		t.Errorf("password hash = %q", u.PasswordHash)
	}
	e, err := s.ListAudit(ctx, AuditFilter{Action: "user.set_password"})
	if err != nil || len(e) != 1 || e[0].Before != nil || e[0].After != nil || e[0].Target != "user:bob" {
		t.Errorf("set_password audit = %+v, %v", e, err)
	}
	if err := s.SetPassword(ctx, admin, bob.ID, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetPassword(empty) = %v", err)
	}
	if err := s.SetPassword(ctx, admin, 999, fakeHash); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetPassword(999) = %v", err)
	}

	if err := s.SetRole(ctx, admin, bob.ID, "operator"); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.UserByID(ctx, bob.ID); u.Role != "operator" {
		t.Errorf("role = %q", u.Role)
	}
	e, _ = s.ListAudit(ctx, AuditFilter{Action: "user.set_role"})
	if len(e) != 1 || !strings.Contains(string(e[0].Before), `"viewer"`) || !strings.Contains(string(e[0].After), `"operator"`) {
		t.Errorf("set_role audit = %+v", e)
	}
	if err := s.SetRole(ctx, admin, bob.ID, "boss"); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetRole(boss) = %v", err)
	}
	if err := s.SetRole(ctx, admin, 999, "viewer"); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetRole(999) = %v", err)
	}

	// root is the only admin: demoting, disabling or deleting is refused.
	n := auditCount(t, s)
	if err := s.SetRole(ctx, admin, root.ID, "viewer"); !errors.Is(err, ErrConflict) {
		t.Errorf("demote last admin = %v, want ErrConflict", err)
	}
	if err := s.SetUserDisabled(ctx, admin, root.ID, true); !errors.Is(err, ErrConflict) {
		t.Errorf("disable last admin = %v, want ErrConflict", err)
	}
	if err := s.DeleteUser(ctx, admin, root.ID); !errors.Is(err, ErrConflict) {
		t.Errorf("delete last admin = %v, want ErrConflict", err)
	}
	if got := auditCount(t, s); got != n {
		t.Errorf("refused changes wrote audit rows: %d -> %d", n, got)
	}
	// With a second admin they succeed.
	if err := s.SetRole(ctx, admin, bob.ID, "admin"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUserDisabled(ctx, admin, root.ID, true); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.UserByID(ctx, root.ID); !u.Disabled {
		t.Error("root not disabled")
	}
	if err := s.SetUserDisabled(ctx, admin, root.ID, false); err != nil {
		t.Fatal(err)
	}

	// Deleting a user deletes their tokens.
	tok, err := s.CreateToken(ctx, admin, Token{UserID: root.ID, Name: "ci", Hash: hashOf("x"), Prefix: "nsc_xxxx"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, admin, root.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserByID(ctx, root.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted user still found: %v", err)
	}
	if _, err := s.GetToken(ctx, tok.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("token of deleted user still found: %v", err)
	}
	if err := s.DeleteUser(ctx, admin, root.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete = %v, want ErrNotFound", err)
	}
	e, _ = s.ListAudit(ctx, AuditFilter{Action: "user.delete"})
	if len(e) != 1 || e[0].After != nil || !strings.Contains(string(e[0].Before), `"root"`) || strings.Contains(string(e[0].Before), "old") {
		t.Errorf("delete audit = %+v", e)
	}
}
