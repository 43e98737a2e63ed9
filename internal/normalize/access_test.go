package normalize

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nocsoc/nocsoc/internal/event"
)

func readLines(t testing.TB, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if sc.Text() != "" {
			lines = append(lines, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return lines
}

// checkAccessLines parses every line as an apache access line and requires
// the fields every combined-format line has.
func checkAccessLines(t *testing.T, lines []string) {
	t.Helper()
	var bad int
	for i, line := range lines {
		e := &event.Event{Input: "file", Raw: line}
		NormalizeLine(e, KindApacheAccess)
		problem := e.ParseError
		if problem == "" {
			for _, k := range []string{"source.ip", "http.response.status_code", "http.response.body.bytes", "event.outcome"} {
				if _, ok := e.Fields[k]; !ok {
					problem = "missing " + k
				}
			}
			if _, ok := e.Fields["http.request.method"]; !ok {
				problem = "no method"
			}
			if e.Time.IsZero() {
				problem = "no time"
			}
		}
		if problem != "" {
			bad++
			if bad <= 10 {
				t.Errorf("line %d: %s: %q", i+1, problem, line)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d lines had a parse problem", bad, len(lines))
	}
}

func TestApacheAccessFixture(t *testing.T) {
	lines := readLines(t, "testdata/apache_access_head200.log")
	if len(lines) != 200 {
		t.Fatalf("%d lines", len(lines))
	}
	checkAccessLines(t, lines)
}

// TestApacheAccessShared parses all 10,000 real lines of the shared data
// set. It skips when the folder is absent, unless CI=true.
func TestApacheAccessShared(t *testing.T) {
	path := filepath.Join("/work/shared/data/logs", "apache_access.log")
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("shared data set missing under CI: %v", err)
		}
		t.Skipf("shared data set absent: %v", err)
	}
	lines := readLines(t, path)
	if len(lines) < 10000 {
		t.Fatalf("%d lines, want 10000", len(lines))
	}
	checkAccessLines(t, lines)
	// Spot checks over the whole set: outcome follows the status code.
	var failures int
	for _, line := range lines {
		e := &event.Event{Raw: line}
		NormalizeLine(e, KindAuto)
		st, _ := e.Fields["http.response.status_code"].(float64)
		out := e.Fields["event.outcome"]
		if (st >= 400) != (out == "failure") {
			t.Fatalf("status %v outcome %v: %q", st, out, line)
		}
		if st >= 400 {
			failures++
		}
		if strings.Contains(line, "\"-\" \"-\"") && e.Fields["user_agent.original"] != nil {
			t.Fatalf("dash agent kept: %q", line)
		}
	}
	if failures == 0 {
		t.Error("no failing requests found in the data set")
	}
}
