package agent

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

// Backups: `nocsoc agent run --job NAME -- COMMAND ARGS…` wraps a backup
// command. It runs the command with its output passed through, measures
// it, and spools the report into the agent's state directory
// (<state>/spool/backups/<run id>.json). The running agent picks spooled
// reports up into its next batch, so a report survives the server being
// down, the agent being restarted, or the agent not running at all when
// the backup ends: the batch goes through the disk buffer like any other.

// jobNameRE matches the server's rule for job names (fleet.JobNameRE).
var jobNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// ExitError carries a wrapped command's non-zero exit status to the
// process, which exits with it.
type ExitError struct{ Code int }

func (e *ExitError) Error() string {
	return fmt.Sprintf("backup command exited with status %d", e.Code)
}

// RunJobOptions configures RunJob.
type RunJobOptions struct {
	Job      string
	StateDir string
	// SizePath, when set, is measured after the run (a file's size, or the
	// total of the regular files under a directory) as the backup's bytes.
	SizePath string
	// Args is the command and its arguments.
	Args []string
	// Stdout and Stderr receive the command's output as it is written.
	Stdout, Stderr io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// KillDelay is how long a command gets between SIGTERM (ctx ended)
	// and SIGKILL; default 30s.
	KillDelay time.Duration
}

func spoolDir(stateDir string) string { return filepath.Join(stateDir, "spool", "backups") }

// RunJob runs the command, spools its report and returns it. The error is
// an *ExitError when the command ran but failed (or could not start: 127),
// and another error when the report could not be spooled (then nothing
// ran).
func RunJob(ctx context.Context, o RunJobOptions) (agentproto.BackupRun, error) {
	switch {
	case !jobNameRE.MatchString(o.Job):
		return agentproto.BackupRun{}, fmt.Errorf("agent run: --job %q must be 1-128 letters, digits, '.', '_' or '-'", o.Job)
	case len(o.Args) == 0:
		return agentproto.BackupRun{}, errors.New("agent run: no command given (usage: nocsoc agent run --job NAME [--size PATH] -- COMMAND ARGS…)")
	case o.StateDir == "":
		return agentproto.BackupRun{}, errors.New("agent run: --state is required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	if o.KillDelay <= 0 {
		o.KillDelay = 30 * time.Second
	}
	// Fail before the backup runs if its report could not be kept.
	dir := spoolDir(o.StateDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return agentproto.BackupRun{}, fmt.Errorf("agent run: spool directory: %w", err)
	}
	probe, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return agentproto.BackupRun{}, fmt.Errorf("agent run: spool directory %s is not writable (run as the agent's user): %w", dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())

	run := agentproto.BackupRun{RunID: newUUID(), Job: o.Job, Command: filepath.Base(o.Args[0])}
	out := &tailWriter{max: agentproto.MaxBackupTail}
	cmd := exec.CommandContext(ctx, o.Args[0], o.Args[1:]...)
	cmd.Stdout = io.MultiWriter(o.Stdout, out)
	cmd.Stderr = io.MultiWriter(o.Stderr, out)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = o.KillDelay
	run.StartedAt = o.Now().UTC()
	err = cmd.Run()
	run.EndedAt = o.Now().UTC()
	run.DurationMS = run.EndedAt.Sub(run.StartedAt).Milliseconds()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		run.ExitCode = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			run.ExitCode = 128 + int(ws.Signal())
			run.Error = "killed by signal " + ws.Signal().String()
		}
	case errors.Is(err, exec.ErrWaitDelay):
		// The command exited 0 but a child kept its output open.
	default:
		run.ExitCode = 127
		if errors.Is(err, fs.ErrPermission) {
			run.ExitCode = 126
		}
		run.Error = "could not start " + o.Args[0] + ": " + err.Error()
	}
	run.OutputTail, run.Truncated = out.tail()
	run.Bytes, run.BytesSource = out.total(), agentproto.BytesFromOutput
	if o.SizePath != "" {
		run.BytesSource = agentproto.BytesFromSize
		n, err := pathSize(o.SizePath)
		run.Bytes = n
		if err != nil {
			msg := fmt.Sprintf("measure --size %s: %v", o.SizePath, err)
			run.Error = strings.TrimSpace(run.Error + "; " + msg)
			run.Error = strings.TrimPrefix(run.Error, "; ")
		}
	}
	if len(run.Error) > agentproto.MaxBackupTail {
		run.Error = run.Error[:agentproto.MaxBackupTail]
	}
	raw, err := json.Marshal(run)
	if err != nil {
		return run, fmt.Errorf("agent run: encode report: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, run.RunID+".json"), raw, 0o600); err != nil {
		return run, fmt.Errorf("agent run: spool report: %w", err)
	}
	if run.ExitCode != 0 {
		return run, &ExitError{Code: run.ExitCode}
	}
	return run, nil
}

// pathSize is a file's size or the total size of the regular files under
// a directory.
func pathSize(p string) (int64, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	if !fi.IsDir() {
		return fi.Size(), nil
	}
	var total int64
	err = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			total += info.Size()
		}
		return nil
	})
	return total, err
}

// tailWriter keeps the last max bytes written and counts them all. Both
// of a command's output streams write to it, from two goroutines.
type tailWriter struct {
	mu    sync.Mutex
	max   int
	buf   []byte
	n     int64
	trunc bool
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n += int64(len(p))
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		// Keep the buffer from growing: drop from the front.
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.trunc = true
	}
	return len(p), nil
}

func (t *tailWriter) tail() (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if t.trunc {
		// Start at a line (or at least a character) boundary.
		if i := strings.IndexByte(string(b), '\n'); i >= 0 && i < len(b)-1 {
			b = b[i+1:]
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), t.trunc
}

func (t *tailWriter) total() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// runJobCommand is `agent run`: flags, then the command after "--".
func runJobCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("agent run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o RunJobOptions
	fs.StringVar(&o.Job, "job", "", "backup job name, as defined on the server (required)")
	fs.StringVar(&o.StateDir, "state", "/var/lib/nocsoc-agent", "the agent's state directory (the report is spooled there)")
	fs.StringVar(&o.SizePath, "size", "", "file or directory whose size after the run is the backup's size (default: bytes of output)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: nocsoc agent run --job NAME [--state DIR] [--size PATH] -- COMMAND ARGS…")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Args, o.Stdout, o.Stderr = fs.Args(), stdout, stderr
	run, err := RunJob(ctx, o)
	var ee *ExitError
	if err != nil && !errors.As(err, &ee) {
		return err
	}
	fmt.Fprintf(stderr, "nocsoc agent run: job %s exited %d after %s, %d bytes (%s); report spooled for the agent\n",
		run.Job, run.ExitCode, time.Duration(run.DurationMS)*time.Millisecond, run.Bytes, run.BytesSource)
	return err
}

// maxSpoolPerBatch bounds the runs taken into one batch.
const maxSpoolPerBatch = 100

// takeSpool reads spooled backup reports, oldest first. The files are
// removed by the returned commit, once the batch holding them is in the
// disk buffer; a crash in between sends a run twice, which the server
// ignores by its run id.
func (a *Agent) takeSpool() ([]agentproto.BackupRun, func()) {
	dir := spoolDir(a.o.StateDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			a.log.Warn("read backup spool", "err", err)
		}
		return nil, func() {}
	}
	var runs []agentproto.BackupRun
	var files []string
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") || !e.Type().IsRegular() {
			continue // .tmp files are reports being written
		}
		p := filepath.Join(dir, name)
		raw, err := os.ReadFile(p)
		if err != nil {
			a.log.Warn("read spooled backup report", "file", p, "err", err)
			continue
		}
		var r agentproto.BackupRun
		if err := json.Unmarshal(raw, &r); err != nil || !jobNameRE.MatchString(r.Job) || r.RunID == "" {
			// Set it aside so it does not block the spool; an operator
			// can look at it.
			a.log.Error("unreadable spooled backup report; renamed to .bad", "file", p, "err", err)
			_ = os.Rename(p, p+".bad")
			continue
		}
		runs = append(runs, r)
		files = append(files, p)
	}
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].StartedAt.Before(runs[j].StartedAt) })
	if len(runs) > maxSpoolPerBatch {
		keep := map[string]bool{}
		runs = runs[:maxSpoolPerBatch]
		for _, r := range runs {
			keep[r.RunID] = true
		}
		var fs2 []string
		for _, f := range files {
			if keep[strings.TrimSuffix(filepath.Base(f), ".json")] {
				fs2 = append(fs2, f)
			}
		}
		files = fs2
	}
	return runs, func() {
		for _, f := range files {
			if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
				a.log.Error("remove sent backup report", "file", f, "err", err)
			}
		}
	}
}
