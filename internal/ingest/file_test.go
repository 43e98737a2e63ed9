package ingest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

func appendLines(t *testing.T, path string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := from; i < to; i++ {
		fmt.Fprintf(f, "Mar  1 10:00:00 web app[1]: line %d\n", i)
	}
}

// checkSeq asserts the events are exactly "line from".."line to-1", in order.
func checkSeq(t *testing.T, sink *collectSink, to int) {
	t.Helper()
	evs := sink.waitN(t, to)
	if len(evs) != to {
		t.Fatalf("got %d events, want %d", len(evs), to)
	}
	for i, e := range evs {
		if want := fmt.Sprintf("line %d", i); e.String("message") != want {
			t.Fatalf("event %d = %q, want %q (duplicate or gap)", i, e.String("message"), want)
		}
	}
}

func fileConfig(dir string) Config {
	return Config{Files: []FileInput{{Name: "logs", Paths: []string{filepath.Join(dir, "app.log")}, Format: "syslog",
		Poll: check.Duration(5 * time.Millisecond)}}}
}

func TestFileTailRotateRestart(t *testing.T) {
	dir := t.TempDir()
	state := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendLines(t, log, 0, 10)

	sink := newSink()
	m := start(t, sink, fileConfig(dir), func(o *Options) { o.StateDir = state })
	checkSeq(t, sink, 10)
	if e := sink.events()[0]; e.Input != InputFile || e.Fields["log.file.path"] != log || e.Host != "web" {
		t.Errorf("event = %+v", e)
	}

	// Append, including a line written in two parts: only complete lines
	// are read.
	appendLines(t, log, 10, 20)
	f, _ := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
	fmt.Fprint(f, "Mar  1 10:00:00 web app[1]: li")
	checkSeq(t, sink, 20)
	fmt.Fprint(f, "ne 20\n")
	f.Close()
	checkSeq(t, sink, 21)

	// Rotate by rename: the old file's tail is finished, the new file read
	// from the start.
	appendLines(t, log, 21, 25)
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	appendLines(t, log, 25, 30)
	checkSeq(t, sink, 30)

	// copytruncate: the same file shrinks and is written again.
	if err := os.Truncate(log, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "truncation noticed", func() bool {
		b, _ := os.ReadFile(filepath.Join(state, "files-logs.json"))
		return strings.Contains(string(b), `"offset": 0`)
	})
	appendLines(t, log, 30, 33)
	checkSeq(t, sink, 33)

	// Restart with the same state dir: nothing read twice, nothing skipped.
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	appendLines(t, log, 33, 40) // written while nocsoc was down
	m2 := start(t, sink, fileConfig(dir), func(o *Options) { o.StateDir = state })
	checkSeq(t, sink, 40)
	appendLines(t, log, 40, 45)
	checkSeq(t, sink, 45)
	_ = m2.Stop()
	if got := len(sink.events()); got != 45 {
		t.Fatalf("after stop: %d events, want 45", got)
	}
}

func TestFileFormats(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	apache := `83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /index.html HTTP/1.1" 200 203023 "-" "Mozilla/5.0"` + "\n"
	tests := []struct {
		format, line string
		check        func(t *testing.T, e map[string]any, tm time.Time, perr string)
	}{
		{"apache-access", apache, func(t *testing.T, f map[string]any, tm time.Time, perr string) {
			if !tm.Equal(time.Date(2015, 5, 17, 10, 5, 3, 0, time.UTC)) || f["event.dataset"] != "apache.access" || perr != "" {
				t.Errorf("time %v dataset %v perr %q", tm, f["event.dataset"], perr)
			}
		}},
		{"json", `{"@timestamp":"2026-01-02T03:04:05Z","message":"hi","source":{"ip":"10.1.2.3"}}` + "\n", func(t *testing.T, f map[string]any, tm time.Time, perr string) {
			if f["source.ip"] != "10.1.2.3" || f["message"] != "hi" || tm.Year() != 2026 || perr != "" {
				t.Errorf("fields %v time %v perr %q", f, tm, perr)
			}
		}},
		{"json", "not json\n", func(t *testing.T, f map[string]any, tm time.Time, perr string) {
			if f["message"] != "not json" || perr == "" {
				t.Errorf("bad JSON line: message %v perr %q", f["message"], perr)
			}
		}},
		{"raw", strings.Repeat("r", 70000) + "\n", func(t *testing.T, f map[string]any, tm time.Time, perr string) {
			if len(f["message"].(string)) != 65536 || perr != "truncated: line of 70000 bytes exceeds 65536" {
				t.Errorf("message len %d perr %q", len(f["message"].(string)), perr)
			}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			p := write(fmt.Sprintf("f%d.log", i), tt.line)
			sink := newSink()
			start(t, sink, Config{Files: []FileInput{{Name: "f", Paths: []string{p}, Format: tt.format, Poll: check.Duration(5 * time.Millisecond)}}}, nil)
			e := sink.waitN(t, 1)[0]
			tt.check(t, e.Fields, e.Time, e.ParseError)
		})
	}
}

// TestRealAuthLog reads the shared auth.log sample end to end.
func TestRealAuthLog(t *testing.T) {
	src := "/work/shared/data/logs/beats_system_auth.log"
	b, err := os.ReadFile(src)
	if err != nil {
		t.Skip("sample logs not available")
	}
	lines := strings.Count(string(b), "\n")
	p := filepath.Join(t.TempDir(), "auth.log")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	sink := newSink()
	start(t, sink, Config{Files: []FileInput{{Name: "auth", Paths: []string{p}, Poll: check.Duration(5 * time.Millisecond)}}}, nil)
	for _, e := range sink.waitN(t, lines) {
		if e.ParseError != "" || e.Host == "" || e.String("process.name") == "" || e.Time.Month() != time.February {
			t.Errorf("%q: host %q process %q perr %q", e.Raw, e.Host, e.String("process.name"), e.ParseError)
		}
	}
}
