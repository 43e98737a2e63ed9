package fleet

import (
	"context"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/store"
)

// Storage forecasting: days until each filesystem is full, from a
// least-squares line through its used bytes over the last 7 days. The
// points are hourly (the last sample of each hour), kept in the state
// store, so a forecast reads at most 168 points per filesystem and
// survives restarts without scanning raw samples.

// ForecastOptions configures forecasting.
type ForecastOptions struct {
	// AlertDays raises an alert for a filesystem forecast full in fewer
	// days; 0 disables the alert.
	AlertDays float64
	// MinPoints is the fewest hourly points a forecast needs; default 12.
	MinPoints int
	// Severity of the alert; default high.
	Severity string
}

// ForecastWindow is how far back the regression looks.
const ForecastWindow = 7 * 24 * time.Hour

// Forecast statuses.
const (
	ForecastOK           = "ok"
	ForecastInsufficient = "insufficient_data"
	ForecastNotGrowing   = "not_growing"
	ForecastFull         = "full"
)

// Forecast is one filesystem's forecast.
type Forecast struct {
	Mount      string    `json:"mount"`
	Status     string    `json:"status"`
	UsedBytes  float64   `json:"used_bytes"`
	TotalBytes float64   `json:"total_bytes"`
	At         time.Time `json:"at"`
	Points     int       `json:"points"`
	// GrowthBytesPerDay is the regression's slope.
	GrowthBytesPerDay float64 `json:"growth_bytes_per_day"`
	// DaysUntilFull and FullAt are set when Status is ok or full.
	DaysUntilFull *float64   `json:"days_until_full,omitempty"`
	FullAt        *time.Time `json:"full_at,omitempty"`
}

// Regression fits y = a + b·x by least squares.
func Regression(xs, ys []float64) (a, b float64, ok bool) {
	n := float64(len(xs))
	if len(xs) < 2 || len(xs) != len(ys) {
		return 0, 0, false
	}
	var mx, my float64
	for i := range xs {
		mx += xs[i]
		my += ys[i]
	}
	mx /= n
	my /= n
	var sxy, sxx float64
	for i := range xs {
		dx := xs[i] - mx
		sxy += dx * (ys[i] - my)
		sxx += dx * dx
	}
	if sxx == 0 {
		return 0, 0, false
	}
	b = sxy / sxx
	return my - b*mx, b, true
}

// ForecastPoints computes the forecast of one filesystem from its points
// (any order): the regression of used bytes over time, the capacity of
// the newest point, and minPoints as the fewest points accepted.
func ForecastPoints(mount string, pts []store.DiskHour, minPoints int) Forecast {
	f := Forecast{Mount: mount, Points: len(pts), Status: ForecastInsufficient}
	if len(pts) == 0 {
		return f
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].Hour.Before(pts[j].Hour) })
	last := pts[len(pts)-1]
	f.UsedBytes, f.TotalBytes, f.At = last.UsedBytes, last.TotalBytes, last.Hour
	if f.TotalBytes > 0 && f.UsedBytes >= f.TotalBytes {
		zero := 0.0
		f.Status, f.DaysUntilFull, f.FullAt = ForecastFull, &zero, &f.At
		return f
	}
	if len(pts) < max(minPoints, 2) {
		return f
	}
	t0 := pts[0].Hour
	xs := make([]float64, len(pts))
	ys := make([]float64, len(pts))
	for i, p := range pts {
		xs[i] = p.Hour.Sub(t0).Seconds()
		ys[i] = p.UsedBytes
	}
	a, b, ok := Regression(xs, ys)
	if !ok {
		return f
	}
	f.GrowthBytesPerDay = b * 86400
	if b <= 0 || f.TotalBytes <= 0 {
		f.Status = ForecastNotGrowing
		return f
	}
	// Full where the line reaches the capacity, counted from the newest
	// point.
	xFull := (f.TotalBytes - a) / b
	secs := xFull - last.Hour.Sub(t0).Seconds()
	days := math.Max(secs/86400, 0)
	at := last.Hour.Add(time.Duration(days * 86400 * float64(time.Second)))
	f.Status, f.DaysUntilFull, f.FullAt = ForecastOK, &days, &at
	return f
}

// diskSeries is one filesystem's hourly points; cur is the hour in
// progress (not yet stored).
type diskSeries struct {
	pts []store.DiskHour
	cur *store.DiskHour
}

type epDisks struct {
	mounts map[string]*diskSeries
}

type forecaster struct {
	mu  sync.Mutex
	opt ForecastOptions
	eps map[string]*epDisks
}

// SetForecast sets the forecast options (at start and on config reload).
func (s *Service) SetForecast(o ForecastOptions) error {
	if o.AlertDays < 0 || o.MinPoints < 0 || o.MinPoints == 1 {
		return &store.FieldError{Field: "forecast", Reason: "alert_days must not be negative and min_points must be 0 (default) or at least 2"}
	}
	s.ops.fc.mu.Lock()
	s.ops.fc.opt = o
	s.ops.fc.mu.Unlock()
	return nil
}

// ForecastFingerprint identifies the forecast alert of one filesystem.
func ForecastFingerprint(endpointID, mount string) string {
	return alert.Fingerprint(map[string]string{"alertname": "FilesystemForecastFull", "endpoint": endpointID, "mount": mount})
}

// loadDisks returns an endpoint's series, reading the stored points the
// first time the endpoint is seen. s.ops.fc.mu is held.
func (s *Service) loadDisks(ctx context.Context, id string, now time.Time) (*epDisks, error) {
	fc := &s.ops.fc
	if fc.eps == nil {
		fc.eps = map[string]*epDisks{}
	}
	if d, ok := fc.eps[id]; ok {
		return d, nil
	}
	pts, err := s.o.Store.DiskHours(ctx, id, now.Add(-ForecastWindow))
	if err != nil {
		return nil, err
	}
	d := &epDisks{mounts: map[string]*diskSeries{}}
	for _, p := range pts {
		ds := d.mounts[p.Mount]
		if ds == nil {
			ds = &diskSeries{}
			d.mounts[p.Mount] = ds
		}
		ds.pts = append(ds.pts, p)
	}
	fc.eps[id] = d
	return d, nil
}

// feedForecast takes a batch's disk samples into the hourly points; when
// an hour closes, its point is stored and the filesystem's forecast is
// checked against the alert threshold.
func (s *Service) feedForecast(ctx context.Context, e store.Endpoint, samples []agentproto.Sample) {
	type key struct {
		mount string
		at    time.Time
	}
	used := map[key]float64{}
	total := map[key]float64{}
	var keys []key
	for _, m := range samples {
		if m.Name != "disk.used_bytes" && m.Name != "disk.total_bytes" {
			continue
		}
		k := key{m.Labels["mount"], m.Time}
		if k.mount == "" {
			continue
		}
		if m.Name == "disk.used_bytes" {
			if _, dup := used[k]; !dup {
				keys = append(keys, k)
			}
			used[k] = m.Value
		} else {
			total[k] = m.Value
		}
	}
	if len(keys) == 0 {
		return
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].at.Before(keys[j].at) })
	fc := &s.ops.fc
	fc.mu.Lock()
	defer fc.mu.Unlock()
	d, err := s.loadDisks(ctx, e.ID, keys[len(keys)-1].at)
	if err != nil {
		s.log.Error("load forecast points", "endpoint", e.ID, "err", err)
		return
	}
	var closed []store.DiskHour
	for _, k := range keys {
		tot, ok := total[k]
		if !ok {
			continue
		}
		ds := d.mounts[k.mount]
		if ds == nil {
			ds = &diskSeries{}
			d.mounts[k.mount] = ds
		}
		hour := k.at.UTC().Truncate(time.Hour)
		if ds.cur != nil && hour.Before(ds.cur.Hour) {
			continue // a late replay of an hour already past
		}
		if ds.cur != nil && hour.After(ds.cur.Hour) {
			ds.pts = append(ds.pts, *ds.cur)
			closed = append(closed, *ds.cur)
			ds.cur = nil
		}
		ds.cur = &store.DiskHour{Mount: k.mount, Hour: hour, UsedBytes: used[k], TotalBytes: tot}
		// Keep the window.
		cut := hour.Add(-ForecastWindow)
		i := 0
		for i < len(ds.pts) && ds.pts[i].Hour.Before(cut) {
			i++
		}
		ds.pts = ds.pts[i:]
	}
	if len(closed) == 0 {
		return
	}
	newest := keys[len(keys)-1].at
	if err := s.o.Store.PutDiskHours(ctx, e.ID, closed, newest.Add(-ForecastWindow)); err != nil {
		s.log.Error("store forecast points", "endpoint", e.ID, "err", err)
	}
	mounts := map[string]bool{}
	for _, c := range closed {
		mounts[c.Mount] = true
	}
	for m := range mounts {
		s.forecastAlert(ctx, e, s.forecastOf(d.mounts[m], m))
	}
}

// forecastOf computes a series' forecast including the hour in progress.
func (s *Service) forecastOf(ds *diskSeries, mount string) Forecast {
	pts := make([]store.DiskHour, 0, len(ds.pts)+1)
	pts = append(pts, ds.pts...)
	if ds.cur != nil {
		pts = append(pts, *ds.cur)
	}
	if len(pts) > 0 {
		cut := pts[len(pts)-1].Hour.Add(-ForecastWindow)
		i := 0
		for i < len(pts) && pts[i].Hour.Before(cut) {
			i++
		}
		pts = pts[i:]
	}
	minPts := s.ops.fc.opt.MinPoints
	if minPts <= 0 {
		minPts = 12
	}
	return ForecastPoints(mount, pts, minPts)
}

func (s *Service) forecastAlert(ctx context.Context, e store.Endpoint, f Forecast) {
	if s.o.Alerts == nil || s.ops.fc.opt.AlertDays <= 0 {
		return
	}
	fp := ForecastFingerprint(e.ID, f.Mount)
	s.loadFiring(ctx)
	if f.DaysUntilFull == nil || *f.DaysUntilFull >= s.ops.fc.opt.AlertDays {
		if !s.isFiring(fp) {
			return
		}
		if err := s.o.Alerts.Resolve(ctx, fp, f.At); err != nil {
			s.log.Error("resolve forecast alert", "endpoint", e.ID, "mount", f.Mount, "err", err)
			return
		}
		s.setFiring(fp, false)
		return
	}
	sev := s.ops.fc.opt.Severity
	if sev == "" {
		sev = "high"
	}
	a := alert.Alert{
		Fingerprint: fp,
		Status:      alert.StatusFiring,
		Team:        alert.TeamNOC,
		Origin:      alert.OriginNatural,
		Severity:    sev,
		Title:       fmt.Sprintf("Filesystem %s on %s is forecast full in %.1f days", f.Mount, e.Hostname, *f.DaysUntilFull),
		Description: fmt.Sprintf("Endpoint %s (%s): %s uses %.0f of %.0f bytes and grows %.0f bytes/day (least squares over %d hourly points of the last 7 days); full around %s. Alert threshold: %g days.",
			e.Hostname, e.ID, f.Mount, f.UsedBytes, f.TotalBytes, f.GrowthBytesPerDay, f.Points, f.FullAt.UTC().Format(time.RFC3339), s.ops.fc.opt.AlertDays),
		Labels:      map[string]string{"alertname": "FilesystemForecastFull", "endpoint": e.ID, "host": e.Hostname, "mount": f.Mount},
		Source:      "forecast",
		StartedAt:   f.At,
		LastSeenAt:  f.At,
		Occurrences: 1,
	}
	if err := s.o.Alerts.Fire(ctx, a); err != nil {
		s.log.Error("fire forecast alert", "endpoint", e.ID, "mount", f.Mount, "err", err)
		return
	}
	s.setFiring(fp, true)
}

// Forecasts returns the forecast of each of an endpoint's filesystems, by
// mount point.
func (s *Service) Forecasts(ctx context.Context, id string) ([]Forecast, error) {
	if _, err := s.o.Store.Endpoint(ctx, id); err != nil {
		return nil, err
	}
	fc := &s.ops.fc
	fc.mu.Lock()
	defer fc.mu.Unlock()
	d, err := s.loadDisks(ctx, id, s.o.Now())
	if err != nil {
		return nil, err
	}
	out := make([]Forecast, 0, len(d.mounts))
	for m, ds := range d.mounts {
		out = append(out, s.forecastOf(ds, m))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Mount < out[j].Mount })
	return out, nil
}
