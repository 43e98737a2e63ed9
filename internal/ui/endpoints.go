package ui

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/eventstore"
	"github.com/nocsoc/nocsoc/internal/store"
)

// FleetReader is the endpoint fleet the endpoint pages read.
// *fleet.Service implements it. The patch, software, job and backup
// sections appear when the value also implements the optional interfaces
// below.
type FleetReader interface {
	Endpoints(ctx context.Context) ([]store.Endpoint, error)
	Endpoint(ctx context.Context, id string) (store.Endpoint, error)
	Inventory(ctx context.Context, id string) (*agentproto.Inventory, error)
	Metrics(ctx context.Context, f eventstore.MetricFilter) ([]eventstore.MetricSample, error)
}

// fleetState is the endpoint side of the console; a nil reader makes the
// endpoint pages answer 503.
type fleetState struct {
	f     FleetReader
	parts fleetParts
}

func (u *UI) initEndpoints(o Options) {
	u.fleet = fleetState{f: o.Fleet, parts: findFleetParts(o.Fleet)}
}

func (u *UI) fleetReady() error {
	if u.fleet.f == nil {
		return errorf(http.StatusServiceUnavailable, "The endpoint fleet is not connected to this console.")
	}
	return nil
}

// endpointRoutes registers the endpoint list and detail, the fleet-wide
// software and patch views, the backup board and the job actions.
func (u *UI) endpointRoutes(m *http.ServeMux) {
	m.Handle("GET /endpoints", u.authed(auth.RoleViewer, u.endpointsPage))
	m.Handle("GET /endpoints/{id}", u.authed(auth.RoleViewer, u.endpointPage))
	m.Handle("GET /fleet/software", u.authed(auth.RoleViewer, u.fleetSoftwarePage))
	u.endpointOpsRoutes(m) // endpoints_ops.go
}

// EndpointsData is the endpoint list's data.
type EndpointsData struct {
	Endpoints []EndpointRow
	// Q filters on hostname, id, OS or remote address; Status on status.
	Q, Status string
	Statuses  []string
	// Counts by status over the whole fleet (not only the filtered rows).
	Counts map[string]int
	Total  int
	// HasPatches is set when pending security updates are known.
	HasPatches, HasBackups bool
}

// EndpointRow is one endpoint in the list.
type EndpointRow struct {
	store.Endpoint
	// Security counts its pending security updates.
	Security int
}

var endpointStatuses = []string{store.EndpointOnline, store.EndpointUnresponsive, store.EndpointRevoked}

func (u *UI) endpointsPage(w http.ResponseWriter, r *http.Request) error {
	if err := u.fleetReady(); err != nil {
		return err
	}
	q := r.URL.Query()
	d := EndpointsData{Q: strings.TrimSpace(q.Get("q")), Status: q.Get("status"), Statuses: endpointStatuses, Counts: map[string]int{}}
	if d.Status != "" && !slices.Contains(endpointStatuses, d.Status) {
		return errorf(http.StatusBadRequest, "status: %q is not one of %s.", d.Status, strings.Join(endpointStatuses, ", "))
	}
	eps, err := u.fleet.f.Endpoints(r.Context())
	if err != nil {
		return err
	}
	security := map[string]int{}
	if pp := u.fleet.parts.patches; pp != nil {
		d.HasPatches = true
		patches, err := pp.Patches(r.Context())
		if err != nil {
			return err
		}
		for _, p := range patches {
			for _, e := range p.Endpoints {
				security[e.EndpointID]++
			}
		}
	}
	d.HasBackups = u.fleet.parts.backups != nil
	needle := strings.ToLower(d.Q)
	for _, e := range eps {
		d.Counts[e.Status]++
		if d.Status != "" && e.Status != d.Status {
			continue
		}
		if needle != "" && !containsFold(needle, e.Hostname, e.ID, e.OS, e.Platform, e.Remote) {
			continue
		}
		d.Endpoints = append(d.Endpoints, EndpointRow{Endpoint: e, Security: security[e.ID]})
	}
	d.Total = len(eps)
	sort.SliceStable(d.Endpoints, func(i, j int) bool {
		return strings.ToLower(d.Endpoints[i].Hostname) < strings.ToLower(d.Endpoints[j].Hostname)
	})
	p := Page{Title: "Endpoints", Nav: "endpoints", Data: d}
	u.takeFlash(w, r, &p)
	return u.render(w, r, http.StatusOK, "endpoints", p)
}

// containsFold reports whether any of fields contains the lower-case
// needle, ignoring case.
func containsFold(needle string, fields ...string) bool {
	for _, f := range fields {
		if strings.Contains(strings.ToLower(f), needle) {
			return true
		}
	}
	return false
}

// Gauge is one health figure of an endpoint: the latest value of a
// percentage metric and a sparkline of the period.
type Gauge struct {
	Name   string
	Latest float64
	At     time.Time
	Spark  template.HTML
	// Level is ok, warn (≥ 80%) or crit (≥ 90%), for the chip colour.
	Level string
}

// Pct is the latest value as "42.0%".
func (g Gauge) Pct() string { return fmt.Sprintf("%.1f%%", g.Latest) }

// Chip is the CSS class of the gauge's chip.
func (g Gauge) Chip() string {
	switch g.Level {
	case "crit":
		return "st-down"
	case "warn":
		return "st-flapping"
	}
	return "st-up"
}

// EndpointData is the endpoint detail page's data.
type EndpointData struct {
	E       store.Endpoint
	Period  string
	Periods []string
	Health  []Gauge
	Inv     *agentproto.Inventory
	// Pkg is the package search; Packages the matching packages (at most
	// maxPackagesShown), PackagesMatched how many matched in all.
	Pkg             string
	Packages        []agentproto.Package
	PackagesMatched int
	Self            string
	// Ops are the patch, software, job, backup, file and capacity
	// sections (endpoints_ops.go).
	Ops EndpointOps
	// Isolate is set when host isolation can be requested (the
	// active-response service is connected).
	Isolate bool
}

// Memory is the inventory's memory size in a short human form.
func (d EndpointData) Memory() string {
	if d.Inv == nil || d.Inv.Hardware.MemoryBytes == 0 {
		return "–"
	}
	return fmtBytes(float64(d.Inv.Hardware.MemoryBytes))
}

// maxPackagesShown bounds the package table: a server has a few thousand
// packages, and the search box finds the rest.
const maxPackagesShown = 200

// healthPeriods are the sparkline periods the detail page offers.
var healthPeriods = map[string]time.Duration{"1h": time.Hour, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour}

// healthMetrics are the percentage series the health section shows, in
// order; disk usage has one series per mount.
var healthMetrics = []struct{ name, title string }{
	{"cpu.percent", "CPU"},
	{"mem.used_percent", "Memory"},
	{"swap.used_percent", "Swap"},
	{"disk.used_percent", "Disk"},
}

func (u *UI) loadEndpoint(r *http.Request) (store.Endpoint, error) {
	if err := u.fleetReady(); err != nil {
		return store.Endpoint{}, err
	}
	id := r.PathValue("id")
	e, err := u.fleet.f.Endpoint(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return e, errorf(http.StatusNotFound, "No endpoint %q.", id)
	}
	return e, err
}

func (u *UI) endpointPage(w http.ResponseWriter, r *http.Request) error {
	e, err := u.loadEndpoint(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	q := r.URL.Query()
	d := EndpointData{E: e, Period: q.Get("period"), Periods: []string{"1h", "24h", "7d"}, Pkg: strings.TrimSpace(q.Get("pkg")),
		Self: r.URL.RequestURI(), Isolate: u.resp.ar != nil}
	if d.Period == "" {
		d.Period = "1h"
	}
	span, ok := healthPeriods[d.Period]
	if !ok {
		return errorf(http.StatusBadRequest, "period: %q is not one of 1h, 24h, 7d.", d.Period)
	}
	now := u.now().UTC()
	if d.Health, err = u.health(ctx, e.ID, now.Add(-span), now); err != nil {
		return err
	}
	if d.Inv, err = u.fleet.f.Inventory(ctx, e.ID); err != nil {
		return err
	}
	if d.Inv != nil {
		needle := strings.ToLower(d.Pkg)
		for _, p := range d.Inv.Packages {
			if needle != "" && !containsFold(needle, p.Name, p.Version) {
				continue
			}
			d.PackagesMatched++
			if len(d.Packages) < maxPackagesShown {
				d.Packages = append(d.Packages, p)
			}
		}
	}
	if d.Ops, err = u.endpointOps(ctx, e.ID); err != nil {
		return err
	}
	p := Page{Title: e.Hostname, Nav: "endpoints", Data: d}
	u.takeFlash(w, r, &p)
	return u.render(w, r, http.StatusOK, "endpoint", p)
}

// sparkBuckets is how many points a health sparkline has: samples are
// averaged into this many time buckets, so a week of 30 s samples draws
// as fast as an hour.
const sparkBuckets = 60

// health reads the percentage series of one endpoint over [from, to): one
// query per metric name.
func (u *UI) health(ctx context.Context, endpoint string, from, to time.Time) ([]Gauge, error) {
	var out []Gauge
	for _, m := range healthMetrics {
		rows, err := u.fleet.f.Metrics(ctx, eventstore.MetricFilter{Endpoint: endpoint, Name: m.name, From: from, To: to.Add(time.Second), Limit: 100000})
		if err != nil {
			return nil, fmt.Errorf("endpoint %s metric %s: %w", endpoint, m.name, err)
		}
		series := map[string][]eventstore.MetricSample{}
		var keys []string
		for _, s := range rows {
			if _, ok := series[s.Labels]; !ok {
				keys = append(keys, s.Labels)
			}
			series[s.Labels] = append(series[s.Labels], s)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ss := series[k]
			last := ss[len(ss)-1]
			g := Gauge{Name: m.title, Latest: last.Value, At: last.Time, Level: "ok",
				Spark: pctSparkline(bucketize(ss, from, to, sparkBuckets), 120, 24)}
			if mount, ok := strings.CutPrefix(k, "mount="); ok {
				g.Name += " " + mount
			} else if k != "" {
				g.Name += " " + k
			}
			switch {
			case g.Latest >= 90:
				g.Level = "crit"
			case g.Latest >= 80:
				g.Level = "warn"
			}
			out = append(out, g)
		}
	}
	return out, nil
}

// bucketize averages samples (oldest first) into n equal time buckets of
// [from, to); empty buckets are left out.
func bucketize(ss []eventstore.MetricSample, from, to time.Time, n int) []float64 {
	span := to.Sub(from)
	if span <= 0 || n <= 0 {
		return nil
	}
	sums := make([]float64, n)
	counts := make([]int, n)
	for _, s := range ss {
		i := int(s.Time.Sub(from) * time.Duration(n) / span)
		i = max(0, min(i, n-1))
		sums[i] += s.Value
		counts[i]++
	}
	var out []float64
	for i := range n {
		if counts[i] > 0 {
			out = append(out, sums[i]/float64(counts[i]))
		}
	}
	return out
}

// pctSparkline draws percentages (oldest first) on a fixed 0–100 scale,
// so a quiet 5% CPU does not look like a full one. It writes only
// numbers. No values draw an empty box.
func pctSparkline(values []float64, w, h int) template.HTML {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="spark" viewBox="0 0 %d %d" width="%d" height="%d" aria-hidden="true">`, w, h, w, h)
	if len(values) == 1 {
		// All samples fell in one bucket (a new endpoint seen over a
		// week): a level line still says where the value stands.
		values = []float64{values[0], values[0]}
	}
	if len(values) >= 2 {
		step := float64(w) / float64(len(values)-1)
		pts := make([]string, 0, len(values))
		for i, v := range values {
			v = max(0, min(v, 100))
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", float64(i)*step, float64(h)-1-v/100*float64(h-2)))
		}
		fmt.Fprintf(&b, `<polyline class="line" points="%s"/>`, strings.Join(pts, " "))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// fmtBytes shows a size in binary units: "512 B", "1.5 GiB".
func fmtBytes(v float64) string {
	const unit = 1024
	if v < unit {
		return fmt.Sprintf("%.0f B", v)
	}
	i := 0
	for v >= unit && i < 5 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i-1])
}

// SoftwareRow is one package in the fleet software view.
type SoftwareRow struct {
	Name string
	// Status is denied, allowed or unlisted when the fleet keeps allow
	// and deny lists; empty otherwise.
	Status   string
	Versions []SoftwareVersion
	// Endpoints counts the endpoints with any version installed.
	Endpoints int
}

// SoftwareVersion is one installed version and where it is.
type SoftwareVersion struct {
	Version string
	Hosts   []SoftwareHost
}

// SoftwareHost is an endpoint a version is installed on.
type SoftwareHost struct {
	ID, Hostname string
}

// SoftwareData is the fleet software view's data.
type SoftwareData struct {
	Q    string
	Rows []SoftwareRow
	// Matched counts the matching packages; Rows holds at most
	// maxSoftwareRows of them.
	Matched int
	// Reporting counts the endpoints with an inventory.
	Reporting, Endpoints int
}

// maxSoftwareRows bounds the software table; the search narrows it.
const maxSoftwareRows = 300

// fleetSoftwarePage shows which version of each package is installed
// where, from the endpoints' latest inventories (one read per endpoint:
// fine for hundreds of endpoints). Revoked endpoints are left out.
func (u *UI) fleetSoftwarePage(w http.ResponseWriter, r *http.Request) error {
	if err := u.fleetReady(); err != nil {
		return err
	}
	ctx := r.Context()
	d := SoftwareData{Q: strings.TrimSpace(r.URL.Query().Get("q"))}
	needle := strings.ToLower(d.Q)
	eps, err := u.fleet.f.Endpoints(ctx)
	if err != nil {
		return err
	}
	if fs := u.fleet.parts.software; fs != nil {
		if err := u.fleetSoftware(ctx, fs, eps, &d); err != nil {
			return err
		}
		return u.render(w, r, http.StatusOK, "fleet_software", Page{Title: "Fleet software", Nav: "endpoints", Data: d})
	}
	type key struct{ name, version string }
	where := map[key][]SoftwareHost{}
	hosts := map[string]map[string]bool{}
	for _, e := range eps {
		if e.Status == store.EndpointRevoked {
			continue
		}
		d.Endpoints++
		inv, err := u.fleet.f.Inventory(ctx, e.ID)
		if err != nil {
			return err
		}
		if inv == nil {
			continue
		}
		d.Reporting++
		for _, p := range inv.Packages {
			if needle != "" && !strings.Contains(strings.ToLower(p.Name), needle) {
				continue
			}
			k := key{p.Name, p.Version}
			where[k] = append(where[k], SoftwareHost{ID: e.ID, Hostname: e.Hostname})
			if hosts[p.Name] == nil {
				hosts[p.Name] = map[string]bool{}
			}
			hosts[p.Name][e.ID] = true
		}
	}
	names := make([]string, 0, len(hosts))
	for n := range hosts {
		names = append(names, n)
	}
	sort.Strings(names)
	d.Matched = len(names)
	if len(names) > maxSoftwareRows {
		names = names[:maxSoftwareRows]
	}
	byName := map[string]*SoftwareRow{}
	for _, n := range names {
		d.Rows = append(d.Rows, SoftwareRow{Name: n, Endpoints: len(hosts[n])})
	}
	for i := range d.Rows {
		byName[d.Rows[i].Name] = &d.Rows[i]
	}
	for k, eps := range where {
		if row := byName[k.name]; row != nil {
			row.Versions = append(row.Versions, SoftwareVersion{Version: k.version, Hosts: eps})
		}
	}
	for i := range d.Rows {
		sort.Slice(d.Rows[i].Versions, func(a, b int) bool { return d.Rows[i].Versions[a].Version < d.Rows[i].Versions[b].Version })
	}
	return u.render(w, r, http.StatusOK, "fleet_software", Page{Title: "Fleet software", Nav: "endpoints", Data: d})
}

// fleetSoftware fills d from the fleet's own software inventory, which
// also knows the allow and deny lists.
func (u *UI) fleetSoftware(ctx context.Context, fs FleetSoftware, eps []store.Endpoint, d *SoftwareData) error {
	sw, err := fs.Software(ctx, d.Q)
	if err != nil {
		return err
	}
	for _, e := range eps {
		if e.Status == store.EndpointRevoked {
			continue
		}
		d.Endpoints++
		if e.InventoryAt != nil {
			d.Reporting++
		}
	}
	d.Matched = len(sw)
	for i, s := range sw {
		if i == maxSoftwareRows {
			break
		}
		row := SoftwareRow{Name: s.Name, Status: s.Status, Endpoints: s.Endpoints}
		for _, v := range s.Versions {
			sv := SoftwareVersion{Version: v.Version}
			for _, e := range v.Endpoints {
				sv.Hosts = append(sv.Hosts, SoftwareHost{ID: e.ID, Hostname: e.Hostname})
			}
			row.Versions = append(row.Versions, sv)
		}
		d.Rows = append(d.Rows, row)
	}
	return nil
}
