package agent

import (
	"context"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

// opsState is the agent's state for backup reports, file integrity
// monitoring and the mail queue metric.
type opsState struct {
	started bool
	fim     *fimWatcher // nil when file integrity monitoring is off
	fimLast time.Time
}

// collectOps adds spooled backup runs, changed file states (when due) and
// the mail queue metric to b. The returned commit is called once b is in
// the disk buffer: only then are the spool files removed and the file
// states remembered as reported.
func (a *Agent) collectOps(ctx context.Context, now time.Time, b *agentproto.Batch) (commit func()) {
	st := &a.ops
	if !st.started {
		st.started = true
		if a.o.FIMInterval >= 0 {
			paths := a.o.FIMPaths
			if paths == nil {
				paths = DefaultFIMPaths
			}
			st.fim = newFIMWatcher(paths, a.statePath("fim.json"))
		}
	}
	b.Metrics = append(b.Metrics, a.mailQueueSamples(ctx, now)...)
	runs, commitSpool := a.takeSpool()
	b.Backups = runs
	commitFIM := func() error { return nil }
	every := a.o.FIMInterval
	if every == 0 {
		every = a.o.Interval
	}
	if st.fim != nil && (st.fimLast.IsZero() || now.Sub(st.fimLast) >= every) {
		st.fimLast = now
		files, commit := st.fim.scan()
		if len(files) > agentproto.MaxFileStates {
			// The server would refuse the whole batch: stop watching and
			// say why, rather than lose the other data too.
			a.log.Error("file integrity monitoring stopped: too many watched files; narrow --fim-paths",
				"files", len(files), "max", agentproto.MaxFileStates)
			st.fim = nil
		} else {
			b.Files, commitFIM = files, commit
		}
	}
	return func() {
		commitSpool()
		if err := commitFIM(); err != nil {
			a.log.Error("save file integrity state", "err", err)
		}
	}
}
