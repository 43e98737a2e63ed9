package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

// jobRunner long-polls the server for jobs, runs them and reports their
// results. Its state directory (<state>/jobs) holds, per job id:
//
//	<id>.run     the job, while it runs
//	<id>.result  its result, until the server has it
//	<id>.done    an empty marker once the server has it
//
// so that a result survives a server outage and an agent restart, and a
// job delivered twice runs once.
type jobRunner struct {
	a      *Agent
	dir    string
	client *http.Client // no overall timeout: polls are long
	sendMu sync.Mutex
	wg     sync.WaitGroup
	// collect asks the main loop for an inventory and updates collection
	// at its next cycle; kick starts that cycle at once.
	collect atomic.Bool
	kick    chan struct{}
}

// jobClockSkew is how far the agent's clock may be behind the server's
// before a job's window counts as closed.
const jobClockSkew = 5 * time.Minute

// doneMarkerTTL is how long job ids are remembered after their result was
// delivered.
const doneMarkerTTL = 30 * 24 * time.Hour

var jobIDRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func newJobRunner(a *Agent) (*jobRunner, error) {
	dir := filepath.Join(a.o.StateDir, "jobs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("jobs dir: %w", err)
	}
	c := *a.client
	c.Timeout = 0
	return &jobRunner{a: a, dir: dir, client: &c, kick: make(chan struct{}, 1)}, nil
}

func (r *jobRunner) path(id, ext string) string { return filepath.Join(r.dir, id+ext) }

// requestCollect makes the main loop collect inventory and updates now.
func (r *jobRunner) requestCollect() {
	r.collect.Store(true)
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// recover reports jobs that were running when the agent stopped, and
// forgets old done markers.
func (r *jobRunner) recover() {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		r.a.log.Error("read jobs dir", "err", err)
		return
	}
	now := r.a.o.Now().UTC()
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".tmp"):
			_ = os.Remove(filepath.Join(r.dir, name))
		case strings.HasSuffix(name, ".run"):
			id := strings.TrimSuffix(name, ".run")
			if _, err := os.Stat(r.path(id, ".result")); err != nil {
				res := agentproto.JobResult{JobID: id, Status: agentproto.JobFailed, ExitCode: -1,
					Error: "the agent stopped while the job ran; it may have been partly applied", StartedAt: now, FinishedAt: now}
				if err := r.saveResult(res); err != nil {
					r.a.log.Error("save job result", "job", id, "err", err)
					continue
				}
			}
			_ = os.Remove(filepath.Join(r.dir, name))
		case strings.HasSuffix(name, ".done"):
			if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) > doneMarkerTTL {
				_ = os.Remove(filepath.Join(r.dir, name))
			}
		}
	}
}

func (r *jobRunner) saveResult(res agentproto.JobResult) error {
	raw, err := json.Marshal(res)
	if err != nil {
		return err
	}
	return writeFileAtomic(r.path(res.JobID, ".result"), raw, 0o600)
}

// loop polls until ctx ends, then waits for running jobs to stop.
func (r *jobRunner) loop(ctx context.Context) {
	defer r.wg.Wait()
	r.recover()
	first := min(time.Second, r.a.o.Interval)
	backoff := first
	for ctx.Err() == nil {
		r.sendResults(ctx)
		jobs, err := r.fetch(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.a.log.Debug("job poll failed; retrying", "err", err, "in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, max(r.a.o.Interval, time.Second), 30*time.Second)
			continue
		}
		backoff = first
		for _, j := range jobs {
			r.start(ctx, j)
		}
	}
}

// fetch is one long poll.
func (r *jobRunner) fetch(ctx context.Context) ([]agentproto.Job, error) {
	wait := r.a.o.JobWait
	pctx, cancel := context.WithTimeout(ctx, wait+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, r.a.o.Server+agentproto.PathJobs+"?wait="+url.QueryEscape(wait.String()), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+r.a.cred.Credential)
	req.Header.Set("User-Agent", "nocsoc-agent/"+Version)
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		he := &httpError{status: resp.StatusCode, msg: strings.TrimSpace(string(raw))}
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			return nil, fmt.Errorf("%w: %w", ErrRefused, he)
		}
		return nil, he
	}
	var jr agentproto.JobsResponse
	if err := json.Unmarshal(raw, &jr); err != nil {
		return nil, fmt.Errorf("decode jobs: %w", err)
	}
	return jr.Jobs, nil
}

// start runs a job in the background unless it already ran.
func (r *jobRunner) start(ctx context.Context, j agentproto.Job) {
	if !jobIDRe.MatchString(j.ID) {
		r.a.log.Error("job with a malformed id ignored", "id", j.ID)
		return
	}
	for _, ext := range []string{".run", ".result", ".done"} {
		if _, err := os.Stat(r.path(j.ID, ext)); err == nil {
			r.a.log.Info("job delivered again; not run twice", "job", j.ID)
			return
		}
	}
	raw, _ := json.Marshal(j)
	if err := writeFileAtomic(r.path(j.ID, ".run"), raw, 0o600); err != nil {
		r.a.log.Error("record job", "job", j.ID, "err", err)
		return
	}
	r.a.log.Info("job started", "job", j.ID, "action", j.Action)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		res := r.execute(ctx, j)
		if ctx.Err() != nil {
			// The agent is stopping; the .run file makes the next start
			// report the interruption.
			return
		}
		r.a.log.Info("job finished", "job", j.ID, "action", j.Action, "status", res.Status, "exit_code", res.ExitCode)
		if err := r.saveResult(res); err != nil {
			r.a.log.Error("save job result", "job", j.ID, "err", err)
			return
		}
		_ = os.Remove(r.path(j.ID, ".run"))
		r.sendResults(ctx)
	}()
}

// execute checks and runs one job.
func (r *jobRunner) execute(ctx context.Context, j agentproto.Job) agentproto.JobResult {
	now := r.a.o.Now
	refuse := func(res agentproto.JobResult) agentproto.JobResult {
		t := now().UTC()
		res.JobID, res.StartedAt, res.FinishedAt = j.ID, t, t
		return res
	}
	if !j.NotAfter.IsZero() && now().After(j.NotAfter.Add(jobClockSkew)) {
		return refuse(Refused("the job's window closed at %s", j.NotAfter.Format(time.RFC3339)))
	}
	var fn ActionFunc
	switch j.Action {
	case "inventory.collect":
		fn = func(context.Context, agentproto.Job) agentproto.JobResult {
			r.requestCollect()
			return agentproto.JobResult{Status: agentproto.JobSucceeded, Output: "inventory and updates collection started\n"}
		}
	case "shell":
		if !r.a.o.AllowShell {
			return refuse(Refused("shell is disabled on this agent (it runs without --allow-shell)"))
		}
		cmd := j.Args["command"]
		if strings.TrimSpace(cmd) == "" {
			return refuse(Refused("shell needs args.command"))
		}
		fn = func(ctx context.Context, _ agentproto.Job) agentproto.JobResult {
			return RunCommand(ctx, nil, "/bin/sh", "-c", cmd)
		}
	default:
		if isResponseAction(j.Action) && !r.a.o.ActiveResponse {
			return refuse(Refused("active response is disabled on this agent (it runs without --active-response)"))
		}
		var ok bool
		fn, ok = lookupAction(j.Action)
		if !ok {
			return refuse(Refused("unknown action %q: this agent runs %s", j.Action, strings.Join(append(Actions(), "inventory.collect", "shell"), ", ")))
		}
	}
	res := runAction(ctx, fn, j, now)
	if strings.HasPrefix(j.Action, "package.") || strings.HasPrefix(j.Action, "patch.") {
		// Show the server the new state at once.
		r.requestCollect()
	}
	return res
}

// sendResults posts the stored results, oldest first, until one fails.
func (r *jobRunner) sendResults(ctx context.Context) {
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	files, err := filepath.Glob(filepath.Join(r.dir, "*.result"))
	if err != nil || len(files) == 0 {
		return
	}
	type entry struct {
		path string
		mod  time.Time
	}
	var es []entry
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			es = append(es, entry{f, fi.ModTime()})
		}
	}
	sort.Slice(es, func(a, b int) bool { return es[a].mod.Before(es[b].mod) })
	for _, e := range es {
		if ctx.Err() != nil {
			return
		}
		raw, err := os.ReadFile(e.path)
		if err != nil {
			continue
		}
		var res agentproto.JobResult
		if err := json.Unmarshal(raw, &res); err != nil || !jobIDRe.MatchString(res.JobID) {
			r.a.log.Error("drop unreadable job result", "file", e.path, "err", err)
			_ = os.Remove(e.path)
			continue
		}
		var resp agentproto.JobResultResponse
		err = r.a.post(ctx, agentproto.PathJobResult, r.a.cred.Credential, res, &resp)
		var he *httpError
		switch {
		case err == nil:
		case errors.As(err, &he) && he.status >= 400 && he.status < 500 && he.status != http.StatusTooManyRequests &&
			he.status != http.StatusUnauthorized && he.status != http.StatusForbidden:
			r.a.log.Error("server rejected job result; dropping it", "job", res.JobID, "err", err)
		default:
			if ctx.Err() == nil {
				r.a.log.Warn("send job result failed; will retry", "job", res.JobID, "err", err)
			}
			return
		}
		if err := writeFileAtomic(r.path(res.JobID, ".done"), nil, 0o600); err != nil {
			r.a.log.Error("mark job done", "job", res.JobID, "err", err)
		}
		_ = os.Remove(e.path)
	}
}
