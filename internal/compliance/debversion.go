package compliance

import (
	"fmt"
	"strconv"
	"strings"
)

// DebVersion is a parsed Debian package version: [epoch:]upstream[-revision].
type DebVersion struct {
	Epoch    int
	Upstream string
	Revision string
}

// ParseDebVersion parses v the way dpkg does (lib/dpkg/parsehelp.c
// parseversion): an optional numeric epoch before the first ':', the
// revision after the last '-', the upstream part starting with a digit.
func ParseDebVersion(v string) (DebVersion, error) {
	s := strings.TrimSpace(v)
	if s == "" {
		return DebVersion{}, fmt.Errorf("version %q: is empty", v)
	}
	if strings.ContainsAny(s, " \t") {
		return DebVersion{}, fmt.Errorf("version %q: contains whitespace", v)
	}
	var d DebVersion
	if i := strings.IndexByte(s, ':'); i >= 0 {
		e, err := strconv.Atoi(s[:i])
		if err != nil || e < 0 {
			return DebVersion{}, fmt.Errorf("version %q: epoch %q is not a non-negative number", v, s[:i])
		}
		d.Epoch = e
		s = s[i+1:]
	}
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		d.Revision = s[i+1:]
		s = s[:i]
		if d.Revision == "" {
			return DebVersion{}, fmt.Errorf("version %q: revision is empty", v)
		}
	}
	if s == "" {
		return DebVersion{}, fmt.Errorf("version %q: upstream version is empty", v)
	}
	if s[0] < '0' || s[0] > '9' {
		return DebVersion{}, fmt.Errorf("version %q: upstream version must start with a digit", v)
	}
	for _, r := range s {
		if !(isDigit(byte(r)) || isAlpha(byte(r)) || strings.ContainsRune(".+-~:", r)) || r > 127 {
			return DebVersion{}, fmt.Errorf("version %q: invalid character %q in upstream version", v, r)
		}
	}
	for _, r := range d.Revision {
		if !(isDigit(byte(r)) || isAlpha(byte(r)) || strings.ContainsRune(".+~", r)) || r > 127 {
			return DebVersion{}, fmt.Errorf("version %q: invalid character %q in revision", v, r)
		}
	}
	d.Upstream = s
	return d, nil
}

// CompareDebVersions compares two Debian versions as dpkg
// --compare-versions does: negative when a < b, 0 when equal, positive
// when a > b.
func CompareDebVersions(a, b DebVersion) int {
	if a.Epoch != b.Epoch {
		if a.Epoch < b.Epoch {
			return -1
		}
		return 1
	}
	if c := verrevcmp(a.Upstream, b.Upstream); c != 0 {
		return c
	}
	return verrevcmp(a.Revision, b.Revision)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// order is dpkg's character weight: '~' sorts before everything, even the
// end of the string; letters before non-letters.
func order(c int) int {
	switch {
	case c == 0:
		return 0
	case isDigit(byte(c)):
		return 0
	case isAlpha(byte(c)):
		return c
	case c == '~':
		return -1
	default:
		return c + 256
	}
}

// verrevcmp is dpkg's lib/dpkg/version.c verrevcmp: alternate non-digit
// runs (compared by order) and digit runs (compared numerically).
func verrevcmp(a, b string) int {
	at := func(s string, i int) int {
		if i < len(s) {
			return int(s[i])
		}
		return 0
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		firstDiff := 0
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			ac, bc := order(at(a, i)), order(at(b, j))
			if ac != bc {
				return ac - bc
			}
			i++
			j++
		}
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		for i < len(a) && isDigit(a[i]) && j < len(b) && isDigit(b[j]) {
			if firstDiff == 0 {
				firstDiff = int(a[i]) - int(b[j])
			}
			i++
			j++
		}
		if i < len(a) && isDigit(a[i]) {
			return 1
		}
		if j < len(b) && isDigit(b[j]) {
			return -1
		}
		if firstDiff != 0 {
			return firstDiff
		}
	}
	return 0
}
