package fleet

import (
	"context"
	"sort"
	"time"

	"github.com/nocsoc/nocsoc/internal/compliance"
	"github.com/nocsoc/nocsoc/internal/eventstore"
	"github.com/nocsoc/nocsoc/internal/incident"
	"github.com/nocsoc/nocsoc/internal/opmetrics"
)

// ServiceLevelSource builds ComplianceOptions.ServiceLevel from the
// incidents of a period (MTTA, MTTR via opmetrics) and the uptime of the
// monitored checks; uptime may be nil.
func ServiceLevelSource(
	incidents func(ctx context.Context, from, to time.Time) ([]incident.Incident, error),
	uptime func(ctx context.Context, from, to time.Time) (map[string]eventstore.Uptime, error),
) func(ctx context.Context, from, to time.Time) (*compliance.ServiceLevel, error) {
	return func(ctx context.Context, from, to time.Time) (*compliance.ServiceLevel, error) {
		incs, err := incidents(ctx, from, to)
		if err != nil {
			return nil, err
		}
		all := opmetrics.Compute(incs, -1, opmetrics.Filter{From: from, To: to})
		soc := opmetrics.Compute(incs, -1, opmetrics.Filter{From: from, To: to, Team: opmetrics.TeamSOC})
		sl := &compliance.ServiceLevel{Incidents: all.Incidents, MTTA: all.MTTA, MTTR: all.MTTR, SOCMTTA: soc.MTTA, SOCMTTR: soc.MTTR}
		if uptime != nil {
			ups, err := uptime(ctx, from, to)
			if err != nil {
				return nil, err
			}
			for name, u := range ups {
				if u.Ratio != nil {
					sl.Uptime = append(sl.Uptime, compliance.CheckUptime{Check: name, Percent: float64(int(*u.Ratio*100000+0.5)) / 1000})
				}
			}
			sort.Slice(sl.Uptime, func(i, j int) bool { return sl.Uptime[i].Check < sl.Uptime[j].Check })
		}
		return sl, nil
	}
}
