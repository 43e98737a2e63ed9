package config

import (
	"strings"
	"testing"
	"time"
)

func TestComplianceRetention(t *testing.T) {
	c, err := Load("t.yml", "compliance:\n  retention: 30d\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Compliance.RetentionD(); got != 30*24*time.Hour {
		t.Errorf("30d = %v", got)
	}
	c, err = Load("t.yml", "compliance:\n  retention: 72h\n")
	if err != nil || c.Compliance.RetentionD() != 72*time.Hour {
		t.Fatalf("72h: %v %v", c, err)
	}
	c, err = Load("t.yml", "server: {}\n")
	if err != nil || c.Compliance.RetentionD() != DefaultComplianceRetention {
		t.Fatalf("default: %v", err)
	}
	for src, want := range map[string]string{
		"compliance:\n  retention: forever\n": `t.yml:2: compliance.retention: invalid duration "forever"`,
		"compliance:\n  retention: 2h\n":      `t.yml:2: compliance.retention: "2h" is shorter than the minimum 1d`,
		"compliance:\n  retention: -3d\n":     `t.yml:2: compliance.retention: invalid duration "-3d"`,
	} {
		_, err := Load("t.yml", src)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", src, err, want)
		}
	}
}
