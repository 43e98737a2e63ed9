package config

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEExampleLoads keeps the README's configuration example valid.
func TestREADMEExampleLoads(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start := strings.Index(s, "```yaml\n")
	if start < 0 {
		t.Fatal("README has no yaml example")
	}
	rest := s[start+len("```yaml\n"):]
	end := strings.Index(rest, "```")
	if _, err := Load("README.md", rest[:end]); err != nil {
		t.Fatalf("README example does not load: %v", err)
	}
}
