package ui

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/eventstore"
	"github.com/nocsoc/nocsoc/internal/noc"
	"github.com/nocsoc/nocsoc/internal/store"
)

// periods are the ranges the check page offers, in display order.
var periods = []struct {
	Key string
	D   time.Duration
}{{"1h", time.Hour}, {"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}, {"90d", 90 * 24 * time.Hour}}

func periodOf(key string) (string, time.Duration) {
	for _, p := range periods {
		if p.Key == key {
			return p.Key, p.D
		}
	}
	return "24h", 24 * time.Hour
}

// UptimeRow is the uptime of a check over one period.
type UptimeRow struct {
	Period string
	Up     eventstore.Uptime
}

// CheckData is the check page's data.
type CheckData struct {
	Check   noc.CheckView
	Period  string
	Periods []string
	Chart   template.HTML
	Uptimes []UptimeRow
	Changes []eventstore.StateChange
	Errors  []eventstore.ResultRow
	Labels  []string
}

// chartResults caps the results drawn on the chart; older ones in a long
// period are thinned by the limit, which keeps the page small.
const chartResults = 2000

func (u *UI) loadCheck(r *http.Request) (noc.CheckView, error) {
	name := r.PathValue("name")
	c, err := u.noc.Check(name)
	if errors.Is(err, store.ErrNotFound) {
		return c, errorf(http.StatusNotFound, "No check named %q.", name)
	}
	return c, err
}

func (u *UI) checkPage(w http.ResponseWriter, r *http.Request) error {
	c, err := u.loadCheck(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	now := u.now()
	key, span := periodOf(r.URL.Query().Get("period"))
	d := CheckData{Check: c, Period: key}
	for _, p := range periods {
		d.Periods = append(d.Periods, p.Key)
		up, err := u.events.Uptime(ctx, c.Spec.Name, now.Add(-p.D), now)
		if err != nil {
			return err
		}
		d.Uptimes = append(d.Uptimes, UptimeRow{Period: p.Key, Up: up})
	}
	from := now.Add(-span)
	rows, err := u.events.Results(ctx, eventstore.ResultFilter{Check: c.Spec.Name, From: from, To: now.Add(time.Second), Limit: chartResults})
	if err != nil {
		return err
	}
	pts := make([]Point, 0, len(rows))
	for _, r := range slices.Backward(rows) {
		pts = append(pts, Point{Time: r.Time, Value: float64(r.Duration) / float64(time.Millisecond), Failed: !r.OK})
	}
	d.Chart = TimeChart(pts, from, now, "ms", 900, 220)
	if d.Changes, err = u.events.StateChanges(ctx, c.Spec.Name, from, now.Add(time.Second), 50); err != nil {
		return err
	}
	if d.Errors, err = u.events.Results(ctx, eventstore.ResultFilter{Check: c.Spec.Name, OnlyFailures: true, Limit: 10}); err != nil {
		return err
	}
	for k, v := range c.Spec.Labels {
		d.Labels = append(d.Labels, k+"="+v)
	}
	sort.Strings(d.Labels)
	p := Page{Title: c.Spec.Name, Nav: "noc", Live: true, Data: d}
	if r.URL.Query().Get("ran") == "1" {
		p.Flash = "Run queued; the result appears here when it arrives."
	}
	if r.URL.Query().Get("saved") == "1" {
		p.Flash = "Check saved."
	}
	return u.render(w, r, http.StatusOK, "check", p)
}

func (u *UI) runCheck(w http.ResponseWriter, r *http.Request) error {
	c, err := u.loadCheck(r)
	if err != nil {
		return err
	}
	if err := u.noc.RunNow(c.Spec.Name); err != nil {
		if errors.Is(err, noc.ErrDisabled) {
			return errorf(http.StatusConflict, "%s is disabled; enable it first.", c.Spec.Name)
		}
		return err
	}
	if err := u.st.AppendAudit(r.Context(), actorOf(r), "check.run", "check:"+c.Spec.Name, nil, nil); err != nil {
		u.log.Warn("audit run", "err", err)
	}
	http.Redirect(w, r, "/checks/"+url.PathEscape(c.Spec.Name)+"?ran=1", http.StatusSeeOther)
	return nil
}

// EditForm is the edit page's form state: the values as typed, so a
// rejected form comes back as the user left it.
type EditForm struct {
	Name, Type, Target, Interval, Timeout, Severity string
	Labels, DependsOn                               string
	FailThreshold, SuccessThreshold                 string
	Disabled                                        bool
	Severities                                      []string
}

func formOf(c check.Spec) EditForm {
	var labels []string
	for k, v := range c.Labels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	return EditForm{
		Name: c.Name, Type: c.Type, Target: c.Target, Interval: c.Interval.String(), Timeout: c.Timeout.String(),
		Severity: c.Severity, Labels: strings.Join(labels, "\n"), DependsOn: strings.Join(c.DependsOn, ", "),
		FailThreshold: strconv.Itoa(c.FailThreshold), SuccessThreshold: strconv.Itoa(c.SuccessThreshold),
		Disabled: c.Disabled, Severities: check.Severities,
	}
}

func (u *UI) editableCheck(r *http.Request) (noc.CheckView, error) {
	c, err := u.loadCheck(r)
	if err != nil {
		return c, err
	}
	if c.Spec.Provisioned {
		return c, errorf(http.StatusConflict, "%s is provisioned from the config file: change it there.", c.Spec.Name)
	}
	return c, nil
}

func (u *UI) editCheckPage(w http.ResponseWriter, r *http.Request) error {
	c, err := u.editableCheck(r)
	if err != nil {
		return err
	}
	return u.render(w, r, http.StatusOK, "check_edit", Page{Title: "Edit " + c.Spec.Name, Nav: "noc", Data: formOf(c.Spec)})
}

func (u *UI) editCheck(w http.ResponseWriter, r *http.Request) error {
	c, err := u.editableCheck(r)
	if err != nil {
		return err
	}
	f := EditForm{
		Name: c.Spec.Name, Type: c.Spec.Type,
		Target: strings.TrimSpace(r.PostFormValue("target")), Interval: strings.TrimSpace(r.PostFormValue("interval")),
		Timeout: strings.TrimSpace(r.PostFormValue("timeout")), Severity: r.PostFormValue("severity"),
		Labels: r.PostFormValue("labels"), DependsOn: r.PostFormValue("depends_on"),
		FailThreshold:    strings.TrimSpace(r.PostFormValue("fail_threshold")),
		SuccessThreshold: strings.TrimSpace(r.PostFormValue("success_threshold")),
		Disabled:         r.PostFormValue("disabled") == "on", Severities: check.Severities,
	}
	spec, err := applyForm(c.Spec, f)
	if err == nil {
		_, err = u.noc.UpdateCheck(r.Context(), actorOf(r), spec)
	}
	var fe *check.FieldError
	var se *store.FieldError
	switch {
	case err == nil:
		http.Redirect(w, r, "/checks/"+url.PathEscape(c.Spec.Name)+"?saved=1", http.StatusSeeOther)
		return nil
	case errors.As(err, &fe), errors.As(err, &se), errors.Is(err, store.ErrConflict):
		return u.render(w, r, http.StatusUnprocessableEntity, "check_edit",
			Page{Title: "Edit " + c.Spec.Name, Nav: "noc", Data: f, Error: err.Error()})
	case errors.Is(err, noc.ErrProvisioned):
		return errorf(http.StatusConflict, "%s is provisioned from the config file: change it there.", c.Spec.Name)
	}
	return err
}

// applyForm returns spec with the form's fields applied; type-specific
// options (HTTP headers, DNS records…) are kept as they were. A bad value
// is a *check.FieldError naming the field.
func applyForm(spec check.Spec, f EditForm) (check.Spec, error) {
	dur := func(field, s string) (check.Duration, error) {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, &check.FieldError{Field: field, Reason: fmt.Sprintf("%q is not a duration like 30s or 5m", s)}
		}
		return check.Duration(d), nil
	}
	num := func(field, s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, &check.FieldError{Field: field, Reason: fmt.Sprintf("%q is not a whole number", s)}
		}
		return n, nil
	}
	var err error
	spec.Target = f.Target
	if spec.Interval, err = dur("interval", f.Interval); err != nil {
		return spec, err
	}
	if spec.Timeout, err = dur("timeout", f.Timeout); err != nil {
		return spec, err
	}
	if !slices.Contains(check.Severities, f.Severity) {
		return spec, &check.FieldError{Field: "severity", Reason: fmt.Sprintf("unknown severity %q", f.Severity)}
	}
	spec.Severity = f.Severity
	if spec.FailThreshold, err = num("fail_threshold", f.FailThreshold); err != nil {
		return spec, err
	}
	if spec.SuccessThreshold, err = num("success_threshold", f.SuccessThreshold); err != nil {
		return spec, err
	}
	spec.Disabled = f.Disabled
	spec.Labels = nil
	for i, line := range strings.Split(f.Labels, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return spec, &check.FieldError{Field: fmt.Sprintf("labels line %d", i+1), Reason: fmt.Sprintf("%q is not key=value", line)}
		}
		if spec.Labels == nil {
			spec.Labels = map[string]string{}
		}
		spec.Labels[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	spec.DependsOn = nil
	for _, d := range strings.Split(f.DependsOn, ",") {
		if d = strings.TrimSpace(d); d != "" {
			spec.DependsOn = append(spec.DependsOn, d)
		}
	}
	return spec, nil
}
