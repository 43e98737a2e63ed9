package compliance

import (
	"embed"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/opmetrics"
)

//go:embed templates/report.html
var reportFS embed.FS

var reportTmpl = template.Must(template.New("report.html").Funcs(template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"day":      func(t time.Time) string { return t.UTC().Format("2006-01-02") },
	"secs":     func(d time.Duration) string { return d.Round(time.Second).String() },
	"pct":      func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) + "%" },
	"evidence": evidenceText,
}).ParseFS(reportFS, "templates/report.html"))

// AuditAction is an audit-log entry shown in a report.
type AuditAction struct {
	ID     int64     `json:"id"`
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Hash   string    `json:"hash"`
}

// CheckUptime is one monitored check's availability over the period.
type CheckUptime struct {
	Check   string  `json:"check"`
	Percent float64 `json:"percent"`
}

// ServiceLevel is the operations evidence of a report: incident response
// times and availability over the period.
type ServiceLevel struct {
	Incidents int            `json:"incidents"`
	MTTA      opmetrics.Stat `json:"mtta"`
	MTTR      opmetrics.Stat `json:"mttr"`
	SOCMTTA   opmetrics.Stat `json:"soc_mtta"`
	SOCMTTR   opmetrics.Stat `json:"soc_mttr"`
	Uptime    []CheckUptime  `json:"uptime,omitempty"`
}

// ReportInput is what a report is built from.
type ReportInput struct {
	Framework   string
	From, To    time.Time
	GeneratedAt time.Time
	Set         *Set
	// Results are the results as of To (any order).
	Results    []Result
	Exceptions []Exception
	Audit      []AuditAction
	// ServiceLevel may be nil.
	ServiceLevel *ServiceLevel
}

// Report is the evidence for one framework over a period.
type Report struct {
	Framework      string          `json:"framework"`
	FrameworkTitle string          `json:"framework_title"`
	From           time.Time       `json:"from"`
	To             time.Time       `json:"to"`
	GeneratedAt    time.Time       `json:"generated_at"`
	Endpoints      int             `json:"endpoints"`
	Score          Score           `json:"score"`
	Controls       []ControlReport `json:"controls"`
	Exceptions     []Exception     `json:"exceptions"`
	Audit          []AuditAction   `json:"audit"`
	ServiceLevel   *ServiceLevel   `json:"service_level,omitempty"`
	exceptionsByID map[int64]Exception
}

// ControlReport is one control with the checks that support it.
type ControlReport struct {
	ID     string         `json:"id"`
	Score  Score          `json:"score"`
	Checks []*CheckReport `json:"checks"`
}

// CheckReport is one check with every endpoint's result.
type CheckReport struct {
	ID          string   `json:"id"`
	Policy      string   `json:"policy"`
	Title       string   `json:"title"`
	Severity    string   `json:"severity"`
	Remediation string   `json:"remediation,omitempty"`
	Score       Score    `json:"score"`
	Results     []Result `json:"results"`
}

// BuildReport assembles a report. Checks shared by several controls are
// built once and referenced from each.
func BuildReport(in ReportInput) (*Report, error) {
	if err := ValidateFramework(in.Framework); err != nil {
		return nil, err
	}
	r := &Report{Framework: in.Framework, FrameworkTitle: FrameworkTitle(in.Framework), From: in.From.UTC(), To: in.To.UTC(),
		GeneratedAt: in.GeneratedAt.UTC(), Exceptions: in.Exceptions, Audit: in.Audit, ServiceLevel: in.ServiceLevel,
		exceptionsByID: map[int64]Exception{}}
	if r.Exceptions == nil {
		r.Exceptions = []Exception{}
	}
	if r.Audit == nil {
		r.Audit = []AuditAction{}
	}
	for _, e := range in.Exceptions {
		r.exceptionsByID[e.ID] = e
	}
	checks := map[string]*CheckReport{}
	for _, c := range in.Set.Checks() {
		if len(c.Controls[in.Framework]) > 0 {
			checks[c.ID] = &CheckReport{ID: c.ID, Policy: c.Policy, Title: c.Title, Severity: c.Severity, Remediation: c.Remediation, Results: []Result{}}
		}
	}
	// Size each check's result list first: reports run to hundreds of
	// thousands of results.
	counts := map[string]int{}
	for i := range in.Results {
		counts[in.Results[i].Check]++
	}
	for id, cr := range checks {
		cr.Results = make([]Result, 0, counts[id])
	}
	endpoints := map[string]bool{}
	for _, res := range in.Results {
		cr := checks[res.Check]
		if cr == nil {
			continue
		}
		endpoints[res.Endpoint] = true
		cr.Results = append(cr.Results, res)
		cr.Score.Add(res.Status)
		r.Score.Add(res.Status)
	}
	if r.Score.Pass+r.Score.Fail+r.Score.Error+r.Score.Excepted == 0 {
		r.Score.Percent = 100
	}
	r.Endpoints = len(endpoints)
	for _, cr := range checks {
		SortResults(cr.Results)
		if len(cr.Results) == 0 {
			cr.Score.Percent = 100
		}
	}
	for _, id := range in.Set.Controls(in.Framework) {
		ctl := ControlReport{ID: id, Checks: []*CheckReport{}}
		for _, c := range in.Set.Checks() {
			if !contains(c.Controls[in.Framework], id) {
				continue
			}
			cr := checks[c.ID]
			ctl.Checks = append(ctl.Checks, cr)
			for _, res := range cr.Results {
				ctl.Score.Add(res.Status)
			}
		}
		if ctl.Score.Pass+ctl.Score.Fail+ctl.Score.Error+ctl.Score.Excepted == 0 {
			ctl.Score.Percent = 100
		}
		r.Controls = append(r.Controls, ctl)
	}
	sort.Slice(r.Audit, func(i, j int) bool { return r.Audit[i].ID < r.Audit[j].ID })
	return r, nil
}

// ValidateFramework checks that f is a known framework.
func ValidateFramework(f string) error {
	if contains(Frameworks(), f) {
		return nil
	}
	return fmt.Errorf("unknown framework %q (known: %s)", f, strings.Join(Frameworks(), ", "))
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// CSVHeader is the first row of the CSV export.
var CSVHeader = []string{"framework", "control", "check", "policy", "title", "severity", "endpoint", "hostname", "status",
	"evidence", "collected_at", "evaluated_at", "exception_id", "exception_owner", "exception_reason", "exception_expires"}

// WriteCSV writes one row per control, check and endpoint. Exceptions,
// audit actions and service levels are in the JSON and HTML forms.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	row := make([]string, len(CSVHeader))
	for _, ctl := range r.Controls {
		for _, c := range ctl.Checks {
			for i := range c.Results {
				res := &c.Results[i]
				row = append(row[:0], r.Framework, ctl.ID, c.ID, c.Policy, c.Title, c.Severity, res.Endpoint, res.Hostname, res.Status,
					evidenceText(res.Evidence), stamp(res.CollectedAt), stamp(res.EvaluatedAt))
				if e, ok := r.exceptionsByID[res.ExceptionID]; ok && res.ExceptionID != 0 {
					row = append(row, strconv.FormatInt(e.ID, 10), e.Owner, e.Reason, stamp(e.Expires))
				} else {
					row = append(row, "", "", "", "")
				}
				for i, cell := range row {
					row[i] = csvSafe(cell)
				}
				if err := cw.Write(row); err != nil {
					return err
				}
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe defuses spreadsheet formulas: evidence quotes endpoint files,
// which an attacker on the endpoint controls, so a cell starting with
// = + - @ (or a tab or CR) gets a leading apostrophe.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// evidenceText renders evidence as "test subject: observed" joined by
// " | ".
func evidenceText(ev []Evidence) string {
	var b strings.Builder
	for i, e := range ev {
		if i > 0 {
			b.WriteString(" | ")
		}
		b.WriteString(e.Test)
		b.WriteByte(' ')
		b.WriteString(e.Subject)
		b.WriteString(": ")
		b.WriteString(e.Observed)
	}
	return b.String()
}

// WriteHTML writes a self-contained printable HTML document (no scripts,
// no external assets).
func (r *Report) WriteHTML(w io.Writer) error {
	return reportTmpl.Execute(w, r)
}
