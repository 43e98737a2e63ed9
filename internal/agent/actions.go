package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

// ActionFunc runs one job and reports its outcome. ctx carries the job's
// timeout: an action must stop (kill its child processes) when ctx ends.
// The runner fills in JobID, StartedAt and FinishedAt when left empty, and
// turns an action that ran past its timeout into status timeout.
type ActionFunc func(ctx context.Context, job agentproto.Job) agentproto.JobResult

var (
	actionsMu sync.RWMutex
	actions   = map[string]ActionFunc{}
)

// RegisterAction makes name runnable by jobs. It is safe to call from
// init functions and concurrently; registering a name twice, an empty
// name or a nil func panics, since that is a programming error.
func RegisterAction(name string, fn ActionFunc) {
	if name == "" || fn == nil {
		panic("agent: RegisterAction needs a name and a func")
	}
	actionsMu.Lock()
	defer actionsMu.Unlock()
	if _, dup := actions[name]; dup {
		panic("agent: action " + name + " registered twice")
	}
	actions[name] = fn
}

func lookupAction(name string) (ActionFunc, bool) {
	actionsMu.RLock()
	defer actionsMu.RUnlock()
	fn, ok := actions[name]
	return fn, ok
}

// Actions lists the registered action names, sorted.
func Actions() []string {
	actionsMu.RLock()
	defer actionsMu.RUnlock()
	out := make([]string, 0, len(actions))
	for n := range actions {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Refused is the result of a job the agent will not run.
func Refused(format string, args ...any) agentproto.JobResult {
	return agentproto.JobResult{Status: agentproto.JobRefused, ExitCode: -1, Error: fmt.Sprintf(format, args...)}
}

// defaultJobTimeout applies when a job carries none.
const defaultJobTimeout = 10 * time.Minute

// actionGrace is how long past its timeout an action that ignores its
// context is waited for before the job is reported as timed out anyway.
const actionGrace = 10 * time.Second

// runAction runs job with fn under its timeout. now is the clock.
func runAction(ctx context.Context, fn ActionFunc, job agentproto.Job, now func() time.Time) agentproto.JobResult {
	timeout := time.Duration(job.TimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = defaultJobTimeout
	}
	start := now().UTC()
	jctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan agentproto.JobResult, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- agentproto.JobResult{Status: agentproto.JobFailed, ExitCode: -1, Error: fmt.Sprintf("action %s panicked: %v", job.Action, p)}
			}
		}()
		done <- fn(jctx, job)
	}()
	var res agentproto.JobResult
	select {
	case res = <-done:
	case <-jctx.Done():
		select {
		case res = <-done:
		case <-time.After(actionGrace):
			res = agentproto.JobResult{Status: agentproto.JobTimeout, ExitCode: -1}
		}
	}
	if errors.Is(jctx.Err(), context.DeadlineExceeded) && res.Status != agentproto.JobRefused && res.Status != agentproto.JobSucceeded {
		res.Status = agentproto.JobTimeout
		if !strings.Contains(res.Error, "timeout") {
			res.Error = fmt.Sprintf("killed after its timeout of %s", timeout)
		}
	}
	res.JobID = job.ID
	if res.StartedAt.IsZero() {
		res.StartedAt = start
	}
	if res.FinishedAt.IsZero() {
		res.FinishedAt = now().UTC()
	}
	res.Output = agentproto.TailOutput(res.Output)
	if len(res.Error) > 4000 {
		res.Error = res.Error[:4000]
	}
	return res
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - 2*t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

// raw returns everything kept, uncut.
func (t *tailBuffer) raw() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return agentproto.TailOutput(string(t.b))
}

// RunCommand runs name with args and env added to the agent's
// environment, with stdin empty, in its own process group: when ctx ends
// the whole group is killed (a package manager's children too). The
// result has the exit code and the tail of the combined output; status is
// succeeded on exit 0, timeout when ctx's deadline passed, failed
// otherwise.
func RunCommand(ctx context.Context, env []string, name string, args ...string) agentproto.JobResult {
	out := &tailBuffer{max: agentproto.MaxJobOutput}
	res := runCommandTo(ctx, out, env, name, args...)
	res.Output = out.String()
	return res
}

func runCommandTo(ctx context.Context, out *tailBuffer, env []string, name string, args ...string) agentproto.JobResult {
	start := time.Now().UTC()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	setProcessGroup(cmd)
	err := cmd.Run()
	res := agentproto.JobResult{StartedAt: start, FinishedAt: time.Now().UTC()}
	var ee *exec.ExitError
	switch {
	case err == nil:
		res.Status = agentproto.JobSucceeded
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		res.Status, res.ExitCode = agentproto.JobTimeout, -1
		res.Error = fmt.Sprintf("%s: killed at its timeout", name)
	case errors.As(err, &ee):
		res.Status, res.ExitCode = agentproto.JobFailed, ee.ExitCode()
		res.Error = fmt.Sprintf("%s exited with %s", name, ee.ProcessState.String())
	default:
		res.Status, res.ExitCode = agentproto.JobFailed, -1
		res.Error = fmt.Sprintf("run %s: %v", name, err)
	}
	return res
}
