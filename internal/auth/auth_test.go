package auth

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

func TestValidRole(t *testing.T) {
	for _, tc := range []struct {
		role string
		want bool
	}{
		{RoleAdmin, true}, {RoleOperator, true}, {RoleViewer, true},
		{"", false}, {"Admin", false}, {"root", false},
	} {
		if got := ValidRole(tc.role); got != tc.want {
			t.Errorf("ValidRole(%q) = %v, want %v", tc.role, got, tc.want)
		}
	}
	for _, r := range Roles {
		if !ValidRole(r) {
			t.Errorf("Roles contains invalid %q", r)
		}
	}
}

func TestAllows(t *testing.T) {
	for _, tc := range []struct {
		role, need string
		want       bool
	}{
		{RoleAdmin, RoleAdmin, true},
		{RoleAdmin, RoleOperator, true},
		{RoleAdmin, RoleViewer, true},
		{RoleOperator, RoleAdmin, false},
		{RoleOperator, RoleOperator, true},
		{RoleOperator, RoleViewer, true},
		{RoleViewer, RoleAdmin, false},
		{RoleViewer, RoleOperator, false},
		{RoleViewer, RoleViewer, true},
		{"", RoleViewer, false},
		{"superuser", RoleViewer, false},
		{RoleAdmin, "", false},
		{RoleAdmin, "typo", false},
	} {
		if got := Allows(tc.role, tc.need); got != tc.want {
			t.Errorf("Allows(%q, %q) = %v, want %v", tc.role, tc.need, got, tc.want)
		}
	}
}

func TestHashAndVerifyPassword(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=2,p=2$") {
		t.Errorf("hash %q lacks the expected PHC prefix", h)
	}
	h2, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if h == h2 {
		t.Error("two hashes of the same password are equal: salt not random")
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{
		{"correct horse", true},
		{"correct horsE", false},
		{"", false},
		{"correct horse ", false},
	} {
		ok, err := VerifyPassword(h, tc.pw)
		if err != nil {
			t.Fatalf("VerifyPassword(%q): %v", tc.pw, err)
		}
		if ok != tc.want {
			t.Errorf("VerifyPassword(%q) = %v, want %v", tc.pw, ok, tc.want)
		}
	}
	if _, err := HashPassword(""); err == nil {
		t.Error("HashPassword(\"\") succeeded")
	}
}

// A hash with other (cheap) parameters must still verify: parameters are
// read from the hash, not from the constants.
func TestVerifyPasswordReadsParameters(t *testing.T) {
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte("pw"), salt, 1, 64, 1, 32)
	h := "$argon2id$v=19$m=64,t=1,p=1$" + base64.RawStdEncoding.EncodeToString(salt) + "$" + base64.RawStdEncoding.EncodeToString(key)
	ok, err := VerifyPassword(h, "pw")
	if err != nil || !ok {
		t.Fatalf("VerifyPassword = %v, %v; want true, nil", ok, err)
	}
}

func TestVerifyPasswordMalformed(t *testing.T) {
	good, err := HashPassword("x")
	if err != nil {
		t.Fatal(err)
	}
	p := strings.Split(good, "$")
	join := func(parts ...string) string { return strings.Join(parts, "$") }
	for name, h := range map[string]string{
		"empty":          "",
		"bcrypt":         "$2a$10$abcdefghijklmnopqrstuu5Yb8tTcV1aGkLXc6h1N5bZ3nWbM8XxW",
		"argon2i":        join("", "argon2i", p[2], p[3], p[4], p[5]),
		"version":        join("", "argon2id", "v=16", p[3], p[4], p[5]),
		"params missing": join("", "argon2id", p[2], "m=65536,t=2", p[4], p[5]),
		"params order":   join("", "argon2id", p[2], "t=2,m=65536,p=2", p[4], p[5]),
		"params zero":    join("", "argon2id", p[2], "m=65536,t=0,p=2", p[4], p[5]),
		"params huge":    join("", "argon2id", p[2], "m=99999999,t=2,p=2", p[4], p[5]),
		"salt":           join("", "argon2id", p[2], p[3], "!!!", p[5]),
		"key":            join("", "argon2id", p[2], p[3], p[4], "***"),
		"short key":      join("", "argon2id", p[2], p[3], p[4], "AAAA"),
		"extra field":    good + "$x",
	} {
		ok, err := VerifyPassword(h, "x")
		if ok || !errors.Is(err, ErrMalformedHash) {
			t.Errorf("%s: VerifyPassword = %v, %v; want false, ErrMalformedHash", name, ok, err)
		}
	}
}

func TestNewToken(t *testing.T) {
	plain, hash, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(plain, "nsc_") {
		t.Errorf("token %q lacks nsc_ prefix", plain)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(plain, "nsc_"))
	if err != nil || len(raw) != 32 {
		t.Errorf("token body is not 32 bytes of unpadded base64url: %v, %d bytes", err, len(raw))
	}
	if hash != HashToken(plain) {
		t.Error("hash != HashToken(plain)")
	}
	if len(hash) != 64 || strings.ToLower(hash) != hash {
		t.Errorf("hash %q is not lower-case hex sha256", hash)
	}
	plain2, _, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if plain == plain2 {
		t.Error("two tokens are equal")
	}
}

func TestHashToken(t *testing.T) {
	// sha256("abc"), a published test vector.
	const want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := HashToken("abc"); got != want {
		t.Errorf("HashToken(abc) = %s, want %s", got, want)
	}
}

func TestGeneratePassword(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		pw, err := GeneratePassword()
		if err != nil {
			t.Fatal(err)
		}
		if len(pw) != 20 {
			t.Errorf("len(%q) = %d, want 20", pw, len(pw))
		}
		for _, c := range pw {
			if !strings.ContainsRune(passwordAlphabet, c) {
				t.Errorf("%q contains %q outside the alphabet", pw, c)
			}
		}
		if seen[pw] {
			t.Errorf("duplicate password %q", pw)
		}
		seen[pw] = true
	}
}

func BenchmarkHashPassword(b *testing.B) {
	for b.Loop() {
		if _, err := HashPassword("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}
