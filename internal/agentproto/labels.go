package agentproto

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Endpoint labels (`nocsoc agent --label role=web`) let active-response
// decisions and actions select endpoints by what they are rather than by
// id. The rules live here so the agent refuses a bad flag before it ever
// talks to the server, and the server applies the same ones.

// MaxLabels bounds the labels of one endpoint (and of one selector).
const MaxLabels = 32

// MaxLabelValue is the longest label value, in characters.
const MaxLabelValue = 128

var labelKeyRe = regexp.MustCompile(`^[a-z0-9_.-]{1,63}$`)

// ValidateLabel checks one label: the key is 1-63 of [a-z0-9_.-], the
// value 1-128 printable characters.
func ValidateLabel(key, value string) error {
	if !labelKeyRe.MatchString(key) {
		return fmt.Errorf("label key %q must be 1-63 characters of a-z, 0-9, '_', '.', '-'", key)
	}
	if value == "" {
		return fmt.Errorf("label %q: the value is empty", key)
	}
	if !utf8.ValidString(value) || utf8.RuneCountInString(value) > MaxLabelValue {
		return fmt.Errorf("label %q: the value must be at most %d characters of valid UTF-8", key, MaxLabelValue)
	}
	for _, r := range value {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("label %q: the value contains the non-printable character %U", key, r)
		}
	}
	return nil
}

// ValidateLabels checks every label of m (in key order, so the first
// error is stable) and their number.
func ValidateLabels(m map[string]string) error {
	if len(m) > MaxLabels {
		return fmt.Errorf("%d labels: at most %d are allowed", len(m), MaxLabels)
	}
	for _, k := range SortedLabelKeys(m) {
		if err := ValidateLabel(k, m[k]); err != nil {
			return err
		}
	}
	return nil
}

// ParseLabel reads "key=value" (the agent's --label flag).
func ParseLabel(s string) (key, value string, err error) {
	key, value, ok := strings.Cut(s, "=")
	if !ok {
		return "", "", fmt.Errorf("label %q: want key=value", s)
	}
	if err := ValidateLabel(key, value); err != nil {
		return "", "", err
	}
	return key, value, nil
}

// SortedLabelKeys returns m's keys in order.
func SortedLabelKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// FormatLabels renders labels as "k1=v1, k2=v2" in key order.
func FormatLabels(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for _, k := range SortedLabelKeys(m) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ", ")
}
