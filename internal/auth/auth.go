// Package auth owns nocsoc's authentication primitives: roles and their
// ordering, argon2id password hashing, and API token generation and hashing.
// Users, tokens and the audit log are persisted by internal/store.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Roles, from most to least privileged.
const (
	RoleAdmin    = "admin"
	RoleOperator = "operator"
	RoleViewer   = "viewer"
)

// Roles lists every role, most privileged first.
var Roles = []string{RoleAdmin, RoleOperator, RoleViewer}

// rank orders roles; a higher rank includes every right of a lower one.
func rank(role string) int {
	switch role {
	case RoleAdmin:
		return 3
	case RoleOperator:
		return 2
	case RoleViewer:
		return 1
	}
	return 0
}

// ValidRole reports whether r is one of Roles.
func ValidRole(r string) bool { return rank(r) > 0 }

// Allows reports whether role may do what needs the role need:
// admin > operator > viewer. An unknown role or an unknown need allows
// nothing, so a typo fails closed.
func Allows(role, need string) bool {
	r, n := rank(role), rank(need)
	return r > 0 && n > 0 && r >= n
}

// Argon2id parameters. 64 MiB, 2 passes, 2 lanes took ~55 ms per hash on
// the project's 2-core machine: slow enough to make offline guessing
// expensive, fast enough for interactive logins. Hashes carry their own
// parameters, so raising these later keeps old hashes verifiable.
const (
	argonMemory  = 64 * 1024 // KiB
	argonTime    = 2
	argonThreads = 2
	argonSaltLen = 16
	argonKeyLen  = 32
)

// ErrMalformedHash is returned by VerifyPassword for a hash it cannot parse.
var ErrMalformedHash = errors.New("auth: malformed password hash")

// b64 is the unpadded standard base64 used by PHC strings.
var b64 = base64.RawStdEncoding

// HashPassword hashes pw with argon2id and a random salt, returning a PHC
// string "$argon2id$v=19$m=65536,t=2,p=2$<salt>$<hash>".
func HashPassword(pw string) (string, error) {
	if pw == "" {
		return "", errors.New("hash password: password is empty")
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether pw matches the PHC hash. The comparison is
// constant-time. A hash that is not a well-formed argon2id PHC string is an
// error wrapping ErrMalformedHash, never a silent false.
func VerifyPassword(hash, pw string) (bool, error) {
	parts := strings.Split(hash, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(parts) != 6 || parts[0] != "" {
		return false, fmt.Errorf("%w: want 5 '$'-separated fields", ErrMalformedHash)
	}
	if parts[1] != "argon2id" {
		return false, fmt.Errorf("%w: algorithm %q, want argon2id", ErrMalformedHash, parts[1])
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return false, fmt.Errorf("%w: version %q, want v=%d", ErrMalformedHash, parts[2], argon2.Version)
	}
	var m, t uint32
	var p uint8
	if err := parseParams(parts[3], &m, &t, &p); err != nil {
		return false, err
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return false, fmt.Errorf("%w: bad salt", ErrMalformedHash)
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 1024 {
		return false, fmt.Errorf("%w: bad key", ErrMalformedHash)
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// parseParams reads "m=65536,t=2,p=2". It bounds the values so that a
// hostile hash in the database cannot make verification allocate
// gigabytes or spin for minutes.
func parseParams(s string, m, t *uint32, p *uint8) error {
	fields := strings.Split(s, ",")
	if len(fields) != 3 {
		return fmt.Errorf("%w: parameters %q, want m=,t=,p=", ErrMalformedHash, s)
	}
	want := []string{"m", "t", "p"}
	var vals [3]uint64
	for i, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k != want[i] {
			return fmt.Errorf("%w: parameter %d is %q, want %s=", ErrMalformedHash, i, f, want[i])
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return fmt.Errorf("%w: parameter %s=%q is not a positive integer", ErrMalformedHash, k, v)
		}
		vals[i] = n
	}
	if vals[0] < 8 || vals[0] > 4*1024*1024 || vals[1] > 64 || vals[2] > 255 {
		return fmt.Errorf("%w: parameters %q out of range", ErrMalformedHash, s)
	}
	*m, *t, *p = uint32(vals[0]), uint32(vals[1]), uint8(vals[2])
	return nil
}

// TokenPrefix starts every API token, so leaked tokens are easy to find
// with secret scanners.
const TokenPrefix = "nsc_"

// NewToken returns a new API token: plain is shown to the user once,
// hash is what is stored (see HashToken).
func NewToken() (plain, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("new token: %w", err)
	}
	plain = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return plain, HashToken(plain), nil
}

// HashToken returns the hex SHA-256 of a plain token. A fast hash is
// enough: tokens carry 256 random bits, so guessing is hopeless, and
// lookups by hash must be cheap because they happen on every request.
func HashToken(plain string) string {
	sum := sha256.Sum256([]byte(plain))
	return hex.EncodeToString(sum[:])
}

// passwordAlphabet avoids look-alike characters (0/O, 1/l/I) because the
// first admin's password is read off a terminal and typed in.
const passwordAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// GeneratePassword returns a random 20-character password for the first
// admin (~117 bits of entropy).
func GeneratePassword() (string, error) {
	const n = 20
	out := make([]byte, n)
	// Rejection sampling keeps every character equally likely.
	limit := 256 - 256%len(passwordAlphabet)
	buf := make([]byte, 64)
	for i := 0; i < n; {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("generate password: %w", err)
		}
		for _, c := range buf {
			if int(c) >= limit {
				continue
			}
			out[i] = passwordAlphabet[int(c)%len(passwordAlphabet)]
			i++
			if i == n {
				break
			}
		}
	}
	return string(out), nil
}
