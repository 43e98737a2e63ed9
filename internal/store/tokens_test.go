package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/auth"
)

func hashOf(plain string) string { return auth.HashToken(plain) }

func TestTokens(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	alice, err := s.CreateUser(ctx, admin, User{Name: "alice", Role: "operator"})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := s.CreateUser(ctx, admin, User{Name: "bob", Role: "viewer"})
	if err != nil {
		t.Fatal(err)
	}
	plain, hash, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	exp := t0.Add(24 * time.Hour)
	tok, err := s.CreateToken(ctx, admin, Token{UserID: alice.ID, Name: "ci-bot", Hash: hash, Prefix: plain[:8], ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	if tok.ID == 0 || tok.UserName != "alice" || !tok.CreatedAt.Equal(t0) || !tok.ExpiresAt.Equal(exp) {
		t.Errorf("created %+v", tok)
	}

	gotTok, gotUser, err := s.TokenByHash(ctx, auth.HashToken(plain))
	if err != nil {
		t.Fatal(err)
	}
	if gotTok.ID != tok.ID || gotTok.Hash != hash || gotTok.Prefix != plain[:8] || gotTok.RevokedAt != nil || gotTok.LastUsedAt != nil {
		t.Errorf("TokenByHash token = %+v", gotTok)
	}
	if gotUser != alice {
		t.Errorf("TokenByHash user = %+v, want %+v", gotUser, alice)
	}
	if _, _, err := s.TokenByHash(ctx, hashOf("nope")); !errors.Is(err, ErrNotFound) {
		t.Errorf("TokenByHash(unknown) = %v", err)
	}

	// The audit entry omits the hash.
	e, err := s.ListAudit(ctx, AuditFilter{Action: "token.create"})
	if err != nil || len(e) != 1 {
		t.Fatalf("audit %+v, %v", e, err)
	}
	if strings.Contains(string(e[0].After), hash) || !strings.Contains(string(e[0].After), "ci-bot") {
		t.Errorf("token audit after = %s", e[0].After)
	}

	for _, tc := range []struct {
		name string
		tok  Token
		want error
	}{
		{"same name same user", Token{UserID: alice.ID, Name: "ci-bot", Hash: hashOf("2"), Prefix: "nsc_2"}, ErrConflict},
		{"same hash", Token{UserID: bob.ID, Name: "other", Hash: hash, Prefix: "nsc_3"}, ErrConflict},
		{"no user", Token{UserID: 999, Name: "x", Hash: hashOf("4"), Prefix: "nsc_4"}, ErrNotFound},
		{"no name", Token{UserID: alice.ID, Hash: hashOf("5"), Prefix: "nsc_5"}, ErrInvalid},
		{"bad hash", Token{UserID: alice.ID, Name: "y", Hash: "abc", Prefix: "nsc_6"}, ErrInvalid},
		{"no prefix", Token{UserID: alice.ID, Name: "z", Hash: hashOf("7")}, ErrInvalid},
	} {
		if _, err := s.CreateToken(ctx, admin, tc.tok); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// Another user may reuse the name.
	btok, err := s.CreateToken(ctx, admin, Token{UserID: bob.ID, Name: "ci-bot", Hash: hashOf("b"), Prefix: "nsc_b"})
	if err != nil {
		t.Fatal(err)
	}

	all, err := s.ListTokens(ctx, 0)
	if err != nil || len(all) != 2 {
		t.Errorf("ListTokens(0) = %d, %v", len(all), err)
	}
	mine, err := s.ListTokens(ctx, bob.ID)
	if err != nil || len(mine) != 1 || mine[0].ID != btok.ID || mine[0].UserName != "bob" {
		t.Errorf("ListTokens(bob) = %+v, %v", mine, err)
	}
	if g, err := s.GetToken(ctx, tok.ID); err != nil || g.Name != "ci-bot" || g.UserID != alice.ID {
		t.Errorf("GetToken = %+v, %v", g, err)
	}
	if _, err := s.GetToken(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetToken(999) = %v", err)
	}

	// Revoke, idempotently; the name becomes free again.
	rev := t0.Add(time.Hour)
	if err := s.RevokeToken(ctx, admin, tok.ID, rev); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, admin, tok.ID, rev.Add(time.Hour)); err != nil {
		t.Errorf("second revoke: %v", err)
	}
	g, _ := s.GetToken(ctx, tok.ID)
	if g.RevokedAt == nil || !g.RevokedAt.Equal(rev) {
		t.Errorf("RevokedAt = %v, want %v", g.RevokedAt, rev)
	}
	if e, _ := s.ListAudit(ctx, AuditFilter{Action: "token.revoke"}); len(e) != 1 {
		t.Errorf("revoke audit entries = %d, want 1", len(e))
	}
	if err := s.RevokeToken(ctx, admin, 999, rev); !errors.Is(err, ErrNotFound) {
		t.Errorf("RevokeToken(999) = %v", err)
	}
	if _, err := s.CreateToken(ctx, admin, Token{UserID: alice.ID, Name: "ci-bot", Hash: hashOf("new"), Prefix: "nsc_n"}); err != nil {
		t.Errorf("reusing a revoked token's name: %v", err)
	}
	// A revoked token is still found, so the caller can say why it fails.
	if tk, _, err := s.TokenByHash(ctx, hash); err != nil || tk.RevokedAt == nil {
		t.Errorf("TokenByHash(revoked) = %+v, %v", tk, err)
	}
}

func TestTouchTokenThrottles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openAt(t, path)
	ctx := context.Background()
	u, err := s.CreateUser(ctx, admin, User{Name: "alice", Role: "viewer"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.CreateToken(ctx, admin, Token{UserID: u.ID, Name: "t", Hash: hashOf("t"), Prefix: "nsc_t"})
	if err != nil {
		t.Fatal(err)
	}
	writes := 0
	s.OnWrite(func(op string, _ time.Duration) {
		if op == "token.touch" {
			writes++
		}
	})
	auditBefore := auditCount(t, s)
	for _, tc := range []struct {
		at       time.Duration // after t0
		wantUsed time.Duration
		writes   int
	}{
		{0, 0, 1},
		{10 * time.Second, 0, 1},
		{59 * time.Second, 0, 1},
		{60 * time.Second, 60 * time.Second, 2},
		{90 * time.Second, 60 * time.Second, 2},
		{5 * time.Minute, 5 * time.Minute, 3},
	} {
		if err := s.TouchToken(ctx, tok.ID, t0.Add(tc.at)); err != nil {
			t.Fatal(err)
		}
		g, err := s.GetToken(ctx, tok.ID)
		if err != nil {
			t.Fatal(err)
		}
		if g.LastUsedAt == nil || !g.LastUsedAt.Equal(t0.Add(tc.wantUsed)) {
			t.Errorf("after touch at +%v: LastUsedAt = %v, want +%v", tc.at, g.LastUsedAt, tc.wantUsed)
		}
		if writes != tc.writes {
			t.Errorf("after touch at +%v: %d writes, want %d", tc.at, writes, tc.writes)
		}
	}
	if got := auditCount(t, s); got != auditBefore {
		t.Errorf("TouchToken wrote audit rows")
	}

	// Another process (a second Store) is throttled by the database too.
	other := openAt(t, path)
	if err := other.TouchToken(ctx, tok.ID, t0.Add(5*time.Minute+30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.GetToken(ctx, tok.ID); !g.LastUsedAt.Equal(t0.Add(5 * time.Minute)) {
		t.Errorf("second process moved LastUsedAt within a minute: %v", g.LastUsedAt)
	}
}
