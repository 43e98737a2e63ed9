package store

import (
	"context"
	"fmt"
	"testing"

	"github.com/nocsoc/nocsoc/internal/auth"
)

// BenchmarkOpenAlert measures the dedup path: the same fingerprint fires
// again and again, as a flapping check or a noisy detection does.
func BenchmarkOpenAlert(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	a := testAlert("web")
	for b.Loop() {
		if _, _, err := s.OpenAlert(ctx, a); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenAlertNew measures creating a new alert every time.
func BenchmarkOpenAlertNew(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		if _, _, err := s.OpenAlert(ctx, testAlert(fmt.Sprint(i))); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkTokenByHash is the per-request authentication lookup among 1000
// tokens.
func BenchmarkTokenByHash(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	u, err := s.CreateUser(ctx, admin, User{Name: "ci", Role: "operator"})
	if err != nil {
		b.Fatal(err)
	}
	var hashes []string
	for i := range 1000 {
		_, h, err := auth.NewToken()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.CreateToken(ctx, admin, Token{UserID: u.ID, Name: fmt.Sprint(i), Hash: h, Prefix: "nsc_"}); err != nil {
			b.Fatal(err)
		}
		hashes = append(hashes, h)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, _, err := s.TokenByHash(ctx, hashes[i%len(hashes)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
