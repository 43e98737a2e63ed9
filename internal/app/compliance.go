package app

import (
	"context"
	"sync"
	"time"

	"github.com/nocsoc/nocsoc/internal/store"
)

// complianceRetentionEvery is how often compliance history is pruned.
const complianceRetentionEvery = time.Hour

// runCompliance starts the compliance housekeeping goroutines on wg: the
// policy directory is polled for added, changed and removed files at the
// config poll interval (not when config polling is off), and the history
// retention runs at start and hourly.
func (a *App) runCompliance(ctx context.Context, wg *sync.WaitGroup) {
	if poll := a.opts.ConfigPoll; poll >= 0 {
		if poll == 0 {
			poll = 2 * time.Second
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.fleet.WatchPolicies(ctx, poll)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(complianceRetentionEvery)
		defer tick.Stop()
		for {
			if _, err := a.PruneCompliance(ctx); err != nil && ctx.Err() == nil {
				a.log.Error("compliance retention", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

// PruneCompliance applies compliance.retention now: superseded result
// changes and daily scores older than the retention are deleted (the
// latest result of every endpoint and check, and the one in force at the
// cutoff, stay), and what was deleted is logged.
func (a *App) PruneCompliance(ctx context.Context) (store.CompliancePruneResult, error) {
	a.cfgMu.Lock()
	keep := a.cfg.Compliance.RetentionD()
	a.cfgMu.Unlock()
	now := time.Now
	if a.opts.Now != nil {
		now = a.opts.Now
	}
	cutoff := now().Add(-keep)
	res, err := a.st.PruneComplianceHistory(ctx, cutoff)
	if err != nil {
		return res, err
	}
	if res.HistoryRows > 0 || res.TrendRows > 0 {
		a.log.Info("compliance retention: deleted", "history_rows", res.HistoryRows, "trend_rows", res.TrendRows,
			"before", cutoff.UTC().Format(time.RFC3339), "retention", keep.String())
	}
	return res, nil
}
