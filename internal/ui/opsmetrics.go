package ui

import (
	"html/template"
	"net/http"
	"sort"
	"time"

	"github.com/nocsoc/nocsoc/internal/eventstore"
	"github.com/nocsoc/nocsoc/internal/opmetrics"
)

// metricsDays is how far back the operations metrics look.
const metricsDays = 30

// ServiceUptime is the uptime of one service: the time its checks were up
// over the time they were up or down, added over the checks.
type ServiceUptime struct {
	Service    string
	Checks     int
	Up24, Up30 *float64
}

// OpsData is the Operations metrics page's data.
type OpsData struct {
	From, To             time.Time
	Report               opmetrics.Report
	MTTAChart, MTTRChart template.HTML
	ByTeam, BySeverity   template.HTML
	Services             []ServiceUptime
	HasAlerts            bool
}

var sevOrder = map[string]int{"critical": 0, "high": 1, "medium": 2, "low": 3, "warning": 3, "info": 4}

func (u *UI) opsPage(w http.ResponseWriter, r *http.Request) error {
	if err := u.needOps(); err != nil {
		return err
	}
	ctx := r.Context()
	now := u.now().UTC()
	// Whole UTC days, so each point is one calendar day.
	to := now.Truncate(24 * time.Hour).Add(24 * time.Hour)
	from := to.Add(-metricsDays * 24 * time.Hour)
	d := OpsData{From: from, To: now}
	incs, err := u.ext.ops.IncidentsForMetrics(ctx, from, to)
	if err != nil {
		return err
	}
	vol, err := u.ext.ops.AlertVolume(ctx, from, to)
	if err != nil {
		return err
	}
	total := 0
	byTeam, bySev := map[string]int{}, map[string]int{}
	for _, v := range vol {
		total += v.Alerts
		byTeam[v.Team] += v.Alerts
		bySev[v.Severity] += v.Alerts
	}
	d.HasAlerts = total > 0
	d.Report = opmetrics.Compute(incs, total, opmetrics.Filter{From: from, To: to})
	// One Compute per day over the incidents already loaded: the trend
	// costs no further queries.
	var mtta, mttr []Point
	for day := from; day.Before(to); day = day.Add(24 * time.Hour) {
		rep := opmetrics.Compute(incs, -1, opmetrics.Filter{From: day, To: day.Add(24 * time.Hour)})
		mid := day.Add(12 * time.Hour)
		if rep.MTTA.Count > 0 {
			mtta = append(mtta, Point{Time: mid, Value: rep.MTTA.Mean.Minutes()})
		}
		if rep.MTTR.Count > 0 {
			mttr = append(mttr, Point{Time: mid, Value: rep.MTTR.Mean.Minutes()})
		}
	}
	d.MTTAChart = TimeChart(mtta, from, to, "m", 540, 180)
	d.MTTRChart = TimeChart(mttr, from, to, "m", 540, 180)
	d.ByTeam = BarChart(sortedBars(byTeam, nil, "team-"), 540)
	d.BySeverity = BarChart(sortedBars(bySev, sevOrder, "sev-"), 540)
	if d.Services, err = u.serviceUptimes(r, now); err != nil {
		return err
	}
	return u.render(w, r, http.StatusOK, "ops", Page{Title: "Operations metrics", Nav: "ops", Data: d})
}

func sortedBars(m map[string]int, order map[string]int, class string) []LabeledBar {
	out := make([]LabeledBar, 0, len(m))
	for k, v := range m {
		out = append(out, LabeledBar{Label: k, Value: float64(v), Class: class + k})
	}
	sort.Slice(out, func(i, j int) bool {
		if order != nil {
			oi, ok1 := order[out[i].Label]
			oj, ok2 := order[out[j].Label]
			if ok1 && ok2 && oi != oj {
				return oi < oj
			}
		}
		return out[i].Label < out[j].Label
	})
	return out
}

// serviceUptimes groups the NOC's checks by their "service" label; one
// UptimeAll query per period when the store can, else one per check.
func (u *UI) serviceUptimes(r *http.Request, now time.Time) ([]ServiceUptime, error) {
	ctx := r.Context()
	checks := u.noc.Checks()
	bySvc := map[string][]string{}
	for _, c := range checks {
		if svc := c.Spec.Labels["service"]; svc != "" {
			bySvc[svc] = append(bySvc[svc], c.Spec.Name)
		}
	}
	if len(bySvc) == 0 {
		return nil, nil
	}
	uptimes := func(span time.Duration) (map[string]eventstore.Uptime, error) {
		from := now.Add(-span)
		if b, ok := u.events.(BatchUptimer); ok {
			return b.UptimeAll(ctx, from, now)
		}
		out := map[string]eventstore.Uptime{}
		for _, names := range bySvc {
			for _, n := range names {
				up, err := u.events.Uptime(ctx, n, from, now)
				if err != nil {
					return nil, err
				}
				out[n] = up
			}
		}
		return out, nil
	}
	u24, err := uptimes(24 * time.Hour)
	if err != nil {
		return nil, err
	}
	u30, err := uptimes(metricsDays * 24 * time.Hour)
	if err != nil {
		return nil, err
	}
	ratio := func(m map[string]eventstore.Uptime, names []string) *float64 {
		var up, down time.Duration
		for _, n := range names {
			up += m[n].Up
			down += m[n].Down
		}
		if up+down == 0 {
			return nil
		}
		v := float64(up) / float64(up+down)
		return &v
	}
	var out []ServiceUptime
	for svc, names := range bySvc {
		out = append(out, ServiceUptime{Service: svc, Checks: len(names), Up24: ratio(u24, names), Up30: ratio(u30, names)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Service < out[j].Service })
	return out, nil
}
