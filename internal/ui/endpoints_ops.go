package ui

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/fleet"
	"github.com/nocsoc/nocsoc/internal/store"
)

// The optional parts of the fleet the endpoint pages show when the
// FleetReader also implements them (*fleet.Service implements all).

// FleetPatches is pending updates and patch compliance.
type FleetPatches interface {
	EndpointUpdates(ctx context.Context, id string) (*store.UpdateState, []store.PendingUpdate, error)
	Patches(ctx context.Context) ([]fleet.Patch, error)
	PatchCompliance(ctx context.Context, days int) (fleet.Compliance, error)
}

// FleetSoftware is the fleet software inventory with its allow and deny
// lists.
type FleetSoftware interface {
	Software(ctx context.Context, query string) ([]fleet.Software, error)
	SoftwareViolations(ctx context.Context, endpointID string) ([]store.SoftwareViolation, error)
}

// FleetJobs queues and cancels agent jobs.
type FleetJobs interface {
	CreateJobs(ctx context.Context, actor store.Actor, spec fleet.JobSpec) ([]store.Job, error)
	Job(ctx context.Context, id string) (store.Job, error)
	Jobs(ctx context.Context, f store.JobFilter) ([]store.Job, error)
	CancelJob(ctx context.Context, actor store.Actor, id string) (store.Job, error)
}

// FleetBackups is the backup status board.
type FleetBackups interface {
	BackupBoard(ctx context.Context) ([]fleet.BackupStatus, error)
}

// FleetFiles is file integrity monitoring.
type FleetFiles interface {
	FileStates(ctx context.Context, endpointID string) ([]agentproto.FileState, error)
}

// FleetCapacity is storage forecasts and threshold rule states.
type FleetCapacity interface {
	Forecasts(ctx context.Context, id string) ([]fleet.Forecast, error)
	ThresholdStates(ctx context.Context, id string) ([]fleet.ThresholdState, error)
}

// fleetParts are the optional parts found on the fleet.
type fleetParts struct {
	patches  FleetPatches
	software FleetSoftware
	jobs     FleetJobs
	backups  FleetBackups
	files    FleetFiles
	capacity FleetCapacity
}

func findFleetParts(f FleetReader) fleetParts {
	var p fleetParts
	if f == nil {
		return p
	}
	p.patches, _ = f.(FleetPatches)
	p.software, _ = f.(FleetSoftware)
	p.jobs, _ = f.(FleetJobs)
	p.backups, _ = f.(FleetBackups)
	p.files, _ = f.(FleetFiles)
	p.capacity, _ = f.(FleetCapacity)
	return p
}

// endpointOpsRoutes registers the fleet patch view, the backup board and
// the job actions.
func (u *UI) endpointOpsRoutes(m *http.ServeMux) {
	m.Handle("GET /fleet/patches", u.authed(auth.RoleViewer, u.fleetPatchesPage))
	m.Handle("POST /fleet/patches/jobs", u.authed(auth.RoleOperator, u.patchFleet))
	m.Handle("GET /backups", u.authed(auth.RoleViewer, u.backupsPage))
	m.Handle("POST /endpoints/{id}/jobs", u.authed(auth.RoleOperator, u.createEndpointJob))
	m.Handle("POST /jobs/{id}/cancel", u.authed(auth.RoleOperator, u.cancelJob))
}

// consoleJobActions are the job actions the endpoint page offers. Shell
// is left out on purpose: it is an admin's per-endpoint opt-in, through
// the API.
var consoleJobActions = []string{fleet.ActionPatchSecurity, fleet.ActionPackageUpgrade, fleet.ActionPackageInstall,
	fleet.ActionPackageRemove, fleet.ActionInventoryCollect}

// EndpointOps are the endpoint page's sections beyond health and
// inventory; a nil part's section is left out.
type EndpointOps struct {
	HasPatches bool
	Updates    *store.UpdateState
	Pending    []store.PendingUpdate
	Security   int

	HasSoftware bool
	Violations  []store.SoftwareViolation

	HasJobs bool
	Jobs    []store.Job
	Actions []string

	HasBackups bool
	Backups    []BackupRow

	HasFiles bool
	Files    []FileRow

	HasCapacity bool
	Forecasts   []ForecastRow
	Thresholds  []fleet.ThresholdState
}

// jobsShown bounds the endpoint page's job list.
const jobsShown = 50

// endpointOps reads the optional sections of one endpoint.
func (u *UI) endpointOps(ctx context.Context, id string) (EndpointOps, error) {
	p := u.fleet.parts
	var o EndpointOps
	var err error
	if p.patches != nil {
		o.HasPatches = true
		if o.Updates, o.Pending, err = p.patches.EndpointUpdates(ctx, id); err != nil {
			return o, fmt.Errorf("updates of %s: %w", id, err)
		}
		// Security updates first, then by name.
		slices.SortStableFunc(o.Pending, func(a, b store.PendingUpdate) int {
			if a.Security != b.Security {
				if a.Security {
					return -1
				}
				return 1
			}
			return strings.Compare(a.Name, b.Name)
		})
		for _, up := range o.Pending {
			if up.Security {
				o.Security++
			}
		}
	}
	if p.software != nil {
		o.HasSoftware = true
		if o.Violations, err = p.software.SoftwareViolations(ctx, id); err != nil {
			return o, fmt.Errorf("software violations of %s: %w", id, err)
		}
	}
	if p.jobs != nil {
		o.HasJobs, o.Actions = true, consoleJobActions
		if o.Jobs, err = p.jobs.Jobs(ctx, store.JobFilter{Endpoint: id, Limit: jobsShown}); err != nil {
			return o, fmt.Errorf("jobs of %s: %w", id, err)
		}
	}
	if p.backups != nil {
		o.HasBackups = true
		board, err := p.backups.BackupBoard(ctx)
		if err != nil {
			return o, fmt.Errorf("backup board: %w", err)
		}
		for _, b := range board {
			if b.Job.EndpointID == id {
				o.Backups = append(o.Backups, backupRow(b))
			}
		}
	}
	if p.files != nil {
		o.HasFiles = true
		files, err := p.files.FileStates(ctx, id)
		if err != nil {
			return o, fmt.Errorf("file states of %s: %w", id, err)
		}
		for _, f := range files {
			o.Files = append(o.Files, fileRow(f))
		}
	}
	if p.capacity != nil {
		o.HasCapacity = true
		fcs, err := p.capacity.Forecasts(ctx, id)
		if err != nil {
			return o, fmt.Errorf("forecasts of %s: %w", id, err)
		}
		for _, f := range fcs {
			o.Forecasts = append(o.Forecasts, forecastRow(f))
		}
		if o.Thresholds, err = p.capacity.ThresholdStates(ctx, id); err != nil {
			return o, fmt.Errorf("threshold states of %s: %w", id, err)
		}
	}
	return o, nil
}

// FileRow is one watched file as the page shows it.
type FileRow struct {
	agentproto.FileState
	ModeText, Hash string
}

func fileRow(f agentproto.FileState) FileRow {
	r := FileRow{FileState: f, Hash: f.SHA256}
	if f.Exists {
		r.ModeText = fs.FileMode(f.Mode).String()
	}
	if len(r.Hash) > 16 {
		r.Hash = r.Hash[:16] + "…"
	}
	return r
}

// ForecastRow is one filesystem's forecast in words.
type ForecastRow struct {
	fleet.Forecast
	Used, Days, Growth string
	// Soon is set when the filesystem fills within two weeks.
	Soon bool
}

func forecastRow(f fleet.Forecast) ForecastRow {
	r := ForecastRow{Forecast: f, Days: strings.ReplaceAll(f.Status, "_", " ")}
	if f.TotalBytes > 0 {
		r.Used = fmt.Sprintf("%s of %s (%.0f%%)", fmtBytes(f.UsedBytes), fmtBytes(f.TotalBytes), f.UsedBytes/f.TotalBytes*100)
	}
	if f.GrowthBytesPerDay != 0 {
		sign := "+"
		if f.GrowthBytesPerDay < 0 {
			sign = "−"
		}
		r.Growth = sign + fmtBytes(abs(f.GrowthBytesPerDay)) + "/day"
	}
	if f.DaysUntilFull != nil {
		r.Days = fmt.Sprintf("%.1f days", *f.DaysUntilFull)
		r.Soon = *f.DaysUntilFull < 14
	}
	return r
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// BackupRow is one backup job on the board.
type BackupRow struct {
	fleet.BackupStatus
	Size, Took string
}

// Chip is the CSS class of the job's state.
func (b BackupRow) Chip() string {
	switch b.State {
	case fleet.BackupOK:
		return "st-up"
	case fleet.BackupPending:
		return "st-unknown"
	case fleet.BackupProblem:
		return "st-flapping"
	}
	return "st-down"
}

func backupRow(b fleet.BackupStatus) BackupRow {
	r := BackupRow{BackupStatus: b, Size: "–", Took: "–"}
	if b.LastRun != nil {
		r.Size = fmtBytes(float64(b.LastRun.Bytes))
		r.Took = (time.Duration(b.LastRun.DurationMS) * time.Millisecond).Round(time.Second).String()
	}
	return r
}

// BackupsData is the backup status board's data.
type BackupsData struct {
	Rows   []BackupRow
	Counts map[string]int
}

func (u *UI) backupsPage(w http.ResponseWriter, r *http.Request) error {
	if err := u.fleetReady(); err != nil {
		return err
	}
	if u.fleet.parts.backups == nil {
		return errorf(http.StatusServiceUnavailable, "Backup monitoring is not part of this server's fleet.")
	}
	board, err := u.fleet.parts.backups.BackupBoard(r.Context())
	if err != nil {
		return err
	}
	d := BackupsData{Counts: map[string]int{}}
	for _, b := range board {
		d.Counts[b.State]++
		d.Rows = append(d.Rows, backupRow(b))
	}
	// Problems first: what needs a look is at the top.
	rank := map[string]int{fleet.BackupMissed: 0, fleet.BackupFailed: 1, fleet.BackupProblem: 2, fleet.BackupPending: 3, fleet.BackupOK: 4}
	slices.SortStableFunc(d.Rows, func(a, b BackupRow) int {
		if c := rank[a.State] - rank[b.State]; c != 0 {
			return c
		}
		return strings.Compare(a.Hostname+"/"+a.Job.Name, b.Hostname+"/"+b.Job.Name)
	})
	return u.render(w, r, http.StatusOK, "backups", Page{Title: "Backups", Nav: "endpoints", Data: d})
}

// PatchesData is the fleet patch view's data.
type PatchesData struct {
	Days       int
	Compliance fleet.Compliance
	Percent    string
	Patches    []fleet.Patch
}

func (u *UI) fleetPatchesPage(w http.ResponseWriter, r *http.Request) error {
	if err := u.fleetReady(); err != nil {
		return err
	}
	pp := u.fleet.parts.patches
	if pp == nil {
		return errorf(http.StatusServiceUnavailable, "Patch management is not part of this server's fleet.")
	}
	d := PatchesData{Days: 7, Percent: "–"}
	if v := r.URL.Query().Get("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 3650 {
			return errorf(http.StatusBadRequest, "days: %q is not a number of days between 0 and 3650.", v)
		}
		d.Days = n
	}
	ctx := r.Context()
	var err error
	if d.Compliance, err = pp.PatchCompliance(ctx, d.Days); err != nil {
		return err
	}
	if d.Compliance.Percent != nil {
		d.Percent = fmt.Sprintf("%.1f%%", *d.Compliance.Percent)
	}
	if d.Patches, err = pp.Patches(ctx); err != nil {
		return err
	}
	p := Page{Title: "Fleet patches", Nav: "endpoints", Data: d}
	u.takeFlash(w, r, &p)
	return u.render(w, r, http.StatusOK, "fleet_patches", p)
}

// jobWindow reads the form's window (hours from now, default 24): the job
// may start between now and the window's end.
func jobWindow(r *http.Request, now time.Time) (from, until time.Time, err error) {
	n := 24
	if v := strings.TrimSpace(r.PostFormValue("window_hours")); v != "" {
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 720 {
			return from, until, &store.FieldError{Field: "window_hours", Reason: fmt.Sprintf("%q is not a number of hours between 1 and 720", v)}
		}
	}
	return now, now.Add(time.Duration(n) * time.Hour), nil
}

// jobFail shows a refused job as a flash on the page it was asked from.
func (u *UI) jobFail(w http.ResponseWriter, r *http.Request, def string, err error) error {
	if msg, ok := actionError(err); ok {
		u.setFlash(w, true, "Nothing queued: "+msg)
		backTo(w, r, def)
		return nil
	}
	return err
}

// createEndpointJob queues one job (patch, package, inventory) on the
// endpoint. The fleet validates it against the allow-list, audits it and
// puts it on the timeline; a refusal queues nothing.
func (u *UI) createEndpointJob(w http.ResponseWriter, r *http.Request) error {
	e, err := u.loadEndpoint(r)
	if err != nil {
		return err
	}
	if u.fleet.parts.jobs == nil {
		return errorf(http.StatusServiceUnavailable, "Agent jobs are not part of this server's fleet.")
	}
	self := "/endpoints/" + e.ID
	action := r.PostFormValue("action")
	if !slices.Contains(consoleJobActions, action) {
		return u.jobFail(w, r, self, &store.FieldError{Field: "action", Reason: fmt.Sprintf("%q is not one of %s", action, strings.Join(consoleJobActions, ", "))})
	}
	from, until, err := jobWindow(r, u.now().UTC())
	if err != nil {
		return u.jobFail(w, r, self, err)
	}
	pkgs := strings.FieldsFunc(r.PostFormValue("packages"), func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == '\r' })
	jobs, err := u.fleet.parts.jobs.CreateJobs(r.Context(), actorOf(r), fleet.JobSpec{Endpoints: []string{e.ID}, Action: action,
		Packages: pkgs, NotBefore: from, NotAfter: until, Reason: strings.TrimSpace(r.PostFormValue("reason")), Origin: "console"})
	if err != nil {
		return u.jobFail(w, r, self, err)
	}
	u.setFlash(w, false, fmt.Sprintf("Queued job %s (%s) on %s; the agent picks it up on its next poll.", jobs[0].ID, action, e.Hostname))
	backTo(w, r, self)
	return nil
}

// patchFleet queues an upgrade of one security update on every endpoint
// the fleet patch view lists as missing it; the endpoints are looked up
// again here, never taken from the form.
func (u *UI) patchFleet(w http.ResponseWriter, r *http.Request) error {
	if err := u.fleetReady(); err != nil {
		return err
	}
	pp, pj := u.fleet.parts.patches, u.fleet.parts.jobs
	if pp == nil || pj == nil {
		return errorf(http.StatusServiceUnavailable, "Patch jobs are not part of this server's fleet.")
	}
	ctx := r.Context()
	pkg, arch := r.PostFormValue("package"), r.PostFormValue("arch")
	patches, err := pp.Patches(ctx)
	if err != nil {
		return err
	}
	var eps []string
	for _, p := range patches {
		if p.Package == pkg && p.Arch == arch {
			for _, e := range p.Endpoints {
				eps = append(eps, e.EndpointID)
			}
		}
	}
	if len(eps) == 0 {
		return u.jobFail(w, r, "/fleet/patches", &store.FieldError{Field: "package", Reason: fmt.Sprintf("no endpoint misses a security update of %q", pkg)})
	}
	name := pkg
	if arch != "" {
		name += ":" + arch
	}
	jobs, err := pj.CreateJobs(ctx, actorOf(r), fleet.JobSpec{Endpoints: eps, Action: fleet.ActionPackageUpgrade, Packages: []string{name},
		Reason: "security update of " + pkg + " (fleet patch view)", Origin: "console"})
	if err != nil {
		return u.jobFail(w, r, "/fleet/patches", err)
	}
	u.setFlash(w, false, fmt.Sprintf("Queued %d upgrade job(s) of %s.", len(jobs), name))
	backTo(w, r, "/fleet/patches")
	return nil
}

// cancelJob cancels a job its agent has not taken yet.
func (u *UI) cancelJob(w http.ResponseWriter, r *http.Request) error {
	if err := u.fleetReady(); err != nil {
		return err
	}
	pj := u.fleet.parts.jobs
	if pj == nil {
		return errorf(http.StatusServiceUnavailable, "Agent jobs are not part of this server's fleet.")
	}
	id := r.PathValue("id")
	j, err := pj.CancelJob(r.Context(), actorOf(r), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errorf(http.StatusNotFound, "No job %q.", id)
	case err != nil:
		msg, ok := actionError(err)
		if !ok {
			return err
		}
		u.setFlash(w, true, "Job not canceled: "+msg)
		backTo(w, r, "/endpoints")
		return nil
	}
	u.setFlash(w, false, fmt.Sprintf("Job %s (%s on %s) canceled.", j.ID, j.Action, j.Hostname))
	backTo(w, r, "/endpoints/"+j.EndpointID)
	return nil
}
