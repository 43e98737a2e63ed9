package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/auth"
)

func TestSessions(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	alice, err := s.CreateUser(ctx, admin, User{Name: "alice", Role: "operator", PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	hash := auth.HashToken("session-token")
	se, err := s.CreateSession(ctx, alice.ID, hash, "csrf-1", t0, t0.Add(SessionMaxAge))
	if err != nil {
		t.Fatal(err)
	}
	if se.ID == 0 || !se.CreatedAt.Equal(t0) || !se.ExpiresAt.Equal(t0.Add(SessionMaxAge)) {
		t.Errorf("created %+v", se)
	}

	tests := []struct {
		name    string
		touch   time.Time // zero: no touch before the lookup
		at      time.Time
		wantErr bool
	}{
		{"fresh", time.Time{}, t0.Add(time.Minute), false},
		{"idle just under 12h", time.Time{}, t0.Add(SessionIdleTimeout - time.Millisecond), false},
		{"idle 12h", time.Time{}, t0.Add(SessionIdleTimeout), true},
		{"touched keeps it alive", t0.Add(10 * time.Hour), t0.Add(20 * time.Hour), false},
		{"absolute end even when active", t0.Add(SessionMaxAge - time.Hour), t0.Add(SessionMaxAge), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.touch.IsZero() {
				if err := s.TouchSession(ctx, se.ID, tc.touch); err != nil {
					t.Fatal(err)
				}
			}
			got, u, err := s.SessionByHash(ctx, hash, tc.at)
			if tc.wantErr {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("err = %v, want ErrNotFound", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != se.ID || got.CSRF != "csrf-1" || u.Name != "alice" || u.Role != "operator" {
				t.Errorf("got %+v %+v", got, u)
			}
		})
	}

	// A touch never moves last_seen_at backwards.
	if err := s.TouchSession(ctx, se.ID, t0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SessionByHash(ctx, hash, t0.Add(SessionMaxAge-time.Hour+time.Minute)); err != nil {
		t.Errorf("touch moved last_seen_at back: %v", err)
	}

	// A disabled user's sessions stop working.
	if err := s.SetUserDisabled(ctx, admin, alice.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SessionByHash(ctx, hash, t0.Add(time.Hour)); !errors.Is(err, ErrNotFound) {
		t.Errorf("disabled user: err = %v", err)
	}
	if err := s.SetUserDisabled(ctx, admin, alice.ID, false); err != nil {
		t.Fatal(err)
	}

	// Logout deletes; a second logout is harmless.
	if err := s.DeleteSession(ctx, hash); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSession(ctx, hash); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SessionByHash(ctx, hash, t0.Add(time.Minute)); !errors.Is(err, ErrNotFound) {
		t.Errorf("after logout: err = %v", err)
	}
	if err := s.TouchSession(ctx, se.ID, t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("touch after logout: err = %v", err)
	}
}

func TestSessionBadInput(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	u, err := s.CreateUser(ctx, admin, User{Name: "bob", Role: "viewer"})
	if err != nil {
		t.Fatal(err)
	}
	good := auth.HashToken("t")
	tests := []struct {
		name      string
		user      int64
		hash      string
		csrf      string
		expires   time.Time
		wantField string
		wantErr   error
	}{
		{"short hash", u.ID, "abc", "c", t0.Add(time.Hour), "token_hash", ErrInvalid},
		{"no csrf", u.ID, good, "", t0.Add(time.Hour), "csrf", ErrInvalid},
		{"expires in the past", u.ID, good, "c", t0, "expires", ErrInvalid},
		{"unknown user", u.ID + 100, good, "c", t0.Add(time.Hour), "", ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateSession(ctx, tc.user, tc.hash, tc.csrf, t0, tc.expires)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantField != "" && !strings.Contains(err.Error(), tc.wantField) {
				t.Errorf("err %q does not name %s", err, tc.wantField)
			}
		})
	}
	if _, _, err := s.SessionByHash(ctx, good, t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("a rejected session was stored: %v", err)
	}
}

func TestDeleteSessions(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	u, err := s.CreateUser(ctx, admin, User{Name: "carol", Role: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for i, h := range []string{"a", "b", "c"} {
		se, err := s.CreateSession(ctx, u.ID, auth.HashToken(h), "x", t0.Add(time.Duration(i)*time.Hour), t0.Add(SessionMaxAge))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, se.ID)
	}
	n, err := s.DeleteUserSessions(ctx, u.ID, ids[1])
	if err != nil || n != 2 {
		t.Fatalf("DeleteUserSessions = %d, %v; want 2", n, err)
	}
	if _, _, err := s.SessionByHash(ctx, auth.HashToken("b"), t0.Add(2*time.Hour)); err != nil {
		t.Errorf("kept session gone: %v", err)
	}
	n, err = s.DeleteExpiredSessions(ctx, t0.Add(time.Hour+SessionIdleTimeout))
	if err != nil || n != 1 {
		t.Fatalf("DeleteExpiredSessions = %d, %v; want 1", n, err)
	}
}
