package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

func TestRunJob(t *testing.T) {
	needSh(t)
	state := t.TempDir()
	clock := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	now := func() time.Time { clock = clock.Add(90 * time.Second); return clock }
	var out bytes.Buffer

	// Success, size of a directory.
	dump := filepath.Join(t.TempDir(), "dump")
	if err := os.MkdirAll(filepath.Join(dump, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := `printf 'aaaa' > "$1/a"; printf 'bbbbbb' > "$1/sub/b"; echo dumped`
	run, err := RunJob(context.Background(), RunJobOptions{Job: "pg", StateDir: state, SizePath: dump, Now: now,
		Args: []string{"/bin/sh", "-c", script, "sh", dump}, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if run.ExitCode != 0 || run.Bytes != 10 || run.BytesSource != agentproto.BytesFromSize || run.DurationMS != 90000 ||
		run.OutputTail != "dumped\n" || run.Command != "sh" {
		t.Errorf("run = %+v", run)
	}
	if out.String() != "dumped\n" {
		t.Errorf("output not passed through: %q", out.String())
	}

	// Failure with a long output: the tail is bounded, the bytes count all.
	run, err = RunJob(context.Background(), RunJobOptions{Job: "pg", StateDir: state, Now: now,
		Args: []string{"/bin/sh", "-c", `exec 2>&1; i=0; while [ $i -lt 2000 ]; do echo "line $i"; i=$((i+1)); done; echo fatal >&2; exit 3`}})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 3 || run.ExitCode != 3 {
		t.Fatalf("err = %v, run exit %d; want ExitError 3", err, run.ExitCode)
	}
	if len(run.OutputTail) > agentproto.MaxBackupTail || !run.Truncated || !strings.HasSuffix(run.OutputTail, "line 1999\nfatal\n") ||
		!strings.HasPrefix(run.OutputTail, "line ") || run.BytesSource != agentproto.BytesFromOutput || run.Bytes < 16000 {
		t.Errorf("tail %d bytes truncated=%v bytes=%d: %q…", len(run.OutputTail), run.Truncated, run.Bytes, run.OutputTail[:40])
	}

	// A command that does not exist is a failed run (127), reported too.
	run, err = RunJob(context.Background(), RunJobOptions{Job: "pg", StateDir: state, Now: now, Args: []string{"/nonexistent/backup"}})
	if !errors.As(err, &ee) || ee.Code != 127 || !strings.Contains(run.Error, "could not start") {
		t.Errorf("missing command: err %v run %+v", err, run)
	}

	// Bad input changes nothing.
	if _, err := RunJob(context.Background(), RunJobOptions{Job: "bad name", StateDir: state, Args: []string{"true"}}); err == nil {
		t.Error("bad job name accepted")
	}
	if _, err := RunJob(context.Background(), RunJobOptions{Job: "x", StateDir: state}); err == nil {
		t.Error("no command accepted")
	}

	// The three reports wait in the spool; the agent takes them oldest
	// first and removes them only on commit.
	a := &Agent{o: Options{StateDir: state}, log: slog.New(slog.DiscardHandler)}
	os.WriteFile(filepath.Join(spoolDir(state), "garbage.json"), []byte("{"), 0o600)
	runs, commit := a.takeSpool()
	if len(runs) != 3 || runs[0].ExitCode != 0 || runs[1].ExitCode != 3 || runs[2].ExitCode != 127 {
		t.Fatalf("spool = %+v", runs)
	}
	if again, _ := a.takeSpool(); len(again) != 3 {
		t.Fatalf("spool emptied before commit: %d", len(again))
	}
	commit()
	if again, _ := a.takeSpool(); len(again) != 0 {
		t.Fatalf("spool after commit: %d", len(again))
	}
	if _, err := os.Stat(filepath.Join(spoolDir(state), "garbage.json.bad")); err != nil {
		t.Errorf("unreadable report not set aside: %v", err)
	}
}

func TestRunJobCancel(t *testing.T) {
	needSh(t)
	state := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	go func() {
		// Cancel once the command has started and written.
		buf := make([]byte, 5)
		io.ReadFull(pr, buf)
		cancel()
		io.Copy(io.Discard, pr)
	}()
	run, err := RunJob(ctx, RunJobOptions{Job: "slow", StateDir: state, Stdout: pw, KillDelay: 5 * time.Second,
		Args: []string{"/bin/sh", "-c", "echo start; exec sleep 60"}})
	pw.Close()
	var ee *ExitError
	if !errors.As(err, &ee) || run.ExitCode != 128+15 {
		t.Fatalf("cancelled run: err %v exit %d (%s), want 143 (SIGTERM)", err, run.ExitCode, run.Error)
	}
	raw, err := os.ReadFile(filepath.Join(spoolDir(state), run.RunID+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var got agentproto.BackupRun
	if err := json.Unmarshal(raw, &got); err != nil || got.ExitCode != 143 {
		t.Fatalf("spooled report %s: %v", raw, err)
	}
}

func TestRunJobSpoolNotWritable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes anywhere")
	}
	state := t.TempDir()
	if err := os.MkdirAll(spoolDir(state), 0o500); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "ran")
	_, err := RunJob(context.Background(), RunJobOptions{Job: "x", StateDir: state, Args: []string{"/bin/sh", "-c", "touch " + marker}})
	if err == nil || !strings.Contains(err.Error(), "not writable") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the backup ran although its report could not be kept")
	}
}

// needSh skips a test that runs shell scripts where there is no /bin/sh,
// except in CI, where that is a broken runner.
func needSh(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("/bin/sh is missing")
		}
		t.Skip("no /bin/sh: cannot run the wrapped test commands")
	}
}
