package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/compliance"
	"github.com/nocsoc/nocsoc/internal/fleet"
	"github.com/nocsoc/nocsoc/internal/store"
)

// ComplianceService is what the compliance pages read and change.
// *fleet.Service implements it; the console finds it on Options.Fleet.
type ComplianceService interface {
	PolicySet(ctx context.Context) (*compliance.Set, []string)
	Results(ctx context.Context, endpoint, framework string) ([]fleet.ResultView, error)
	Scores(ctx context.Context, endpoint string, days int) (fleet.ScoreView, error)
	Report(ctx context.Context, framework string, from, to time.Time) (*compliance.Report, error)
	Exceptions(ctx context.Context, all bool) ([]store.ComplianceException, error)
	CreateException(ctx context.Context, actor store.Actor, in fleet.ExceptionInput) (store.ComplianceException, error)
	RevokeException(ctx context.Context, actor store.Actor, id int64) (store.ComplianceException, error)
	Evaluate(ctx context.Context, id string) (int, error)
}

// complianceRoutes registers the compliance overview, policy, check and
// endpoint pages, exceptions and report downloads.
func (u *UI) complianceRoutes(m *http.ServeMux) {
	m.Handle("GET /compliance", u.authed(auth.RoleViewer, u.complianceOverview))
	m.Handle("GET /compliance/policies/{id}", u.authed(auth.RoleViewer, u.compliancePolicyPage))
	m.Handle("GET /compliance/checks/{id}", u.authed(auth.RoleViewer, u.complianceCheckPage))
	m.Handle("GET /compliance/endpoints/{id}", u.authed(auth.RoleViewer, u.complianceEndpointPage))
	m.Handle("GET /compliance/exceptions", u.authed(auth.RoleViewer, u.complianceExceptionsPage))
	m.Handle("POST /compliance/exceptions", u.authed(auth.RoleOperator, u.complianceCreateException))
	m.Handle("POST /compliance/exceptions/{id}/revoke", u.authed(auth.RoleOperator, u.complianceRevokeException))
	m.Handle("POST /compliance/evaluate", u.authed(auth.RoleOperator, u.complianceEvaluate))
	m.Handle("GET /compliance/reports", u.authed(auth.RoleViewer, u.complianceReportsPage))
	m.Handle("GET /compliance/report", u.authed(auth.RoleViewer, u.complianceReportDownload))
}

func (u *UI) complianceSvc() (ComplianceService, error) {
	if u.fleet.f != nil {
		if c, ok := u.fleet.f.(ComplianceService); ok {
			return c, nil
		}
	}
	return nil, errorf(http.StatusServiceUnavailable, "Compliance is not connected to this console.")
}

// FrameworkScore is one framework's line on the overview.
type FrameworkScore struct {
	ID, Title string
	Score     compliance.Score
	Controls  int
}

// EndpointScore is one endpoint's line on the overview.
type EndpointScore struct {
	ID, Hostname string
	Score        compliance.Score
}

// CheckScore is one check with its counts.
type CheckScore struct {
	*compliance.Check
	Score compliance.Score
}

// TrendDay is the fleet's score on one day.
type TrendDay struct {
	Day   string
	Score compliance.Score
}

// ComplianceOverviewData is the overview page's data.
type ComplianceOverviewData struct {
	Overall    compliance.Score
	Frameworks []FrameworkScore
	Policies   []*compliance.Policy
	Errors     []string
	Endpoints  []EndpointScore
	Failing    []CheckScore
	Trend      []TrendDay
}

func (u *UI) complianceOverview(w http.ResponseWriter, r *http.Request) error {
	svc, err := u.complianceSvc()
	if err != nil {
		return err
	}
	ctx := r.Context()
	set, errs := svc.PolicySet(ctx)
	sv, err := svc.Scores(ctx, "", 14)
	if err != nil {
		return err
	}
	rs, err := svc.Results(ctx, "", "")
	if err != nil {
		return err
	}
	d := ComplianceOverviewData{Overall: sv.Overall, Policies: set.Policies, Errors: errs}
	for _, fw := range compliance.Frameworks() {
		d.Frameworks = append(d.Frameworks, FrameworkScore{ID: fw, Title: compliance.FrameworkTitle(fw), Score: sv.Frameworks[fw], Controls: len(set.Controls(fw))})
	}
	hosts := map[string]string{}
	perCheck := map[string]compliance.Score{}
	for _, v := range rs {
		hosts[v.Endpoint] = v.Hostname
		sc := perCheck[v.Check]
		sc.Add(v.Status)
		perCheck[v.Check] = sc
	}
	for id, sc := range sv.Endpoints {
		d.Endpoints = append(d.Endpoints, EndpointScore{ID: id, Hostname: hosts[id], Score: sc})
	}
	sort.Slice(d.Endpoints, func(i, j int) bool {
		if d.Endpoints[i].Score.Percent != d.Endpoints[j].Score.Percent {
			return d.Endpoints[i].Score.Percent < d.Endpoints[j].Score.Percent
		}
		return d.Endpoints[i].Hostname < d.Endpoints[j].Hostname
	})
	for _, c := range set.Checks() {
		if sc := perCheck[c.ID]; sc.Fail > 0 {
			d.Failing = append(d.Failing, CheckScore{Check: c, Score: sc})
		}
	}
	sort.SliceStable(d.Failing, func(i, j int) bool { return d.Failing[i].Score.Fail > d.Failing[j].Score.Fail })
	if len(d.Failing) > 15 {
		d.Failing = d.Failing[:15]
	}
	days := map[string]*compliance.Score{}
	for _, p := range sv.Trend {
		sc := days[p.Day]
		if sc == nil {
			sc = &compliance.Score{}
			days[p.Day] = sc
		}
		sc.Pass += p.Pass
		sc.Fail += p.Fail
		sc.Error += p.Error
		sc.Excepted += p.Excepted
	}
	for day, sc := range days {
		if n := sc.Pass + sc.Fail + sc.Error; n > 0 {
			sc.Percent = float64(int(float64(sc.Pass)/float64(n)*1000+0.5)) / 10
		}
		d.Trend = append(d.Trend, TrendDay{Day: day, Score: *sc})
	}
	sort.Slice(d.Trend, func(i, j int) bool { return d.Trend[i].Day < d.Trend[j].Day })
	p := Page{Title: "Compliance", Nav: "compliance", Data: d}
	u.takeFlash(w, r, &p)
	return u.render(w, r, http.StatusOK, "compliance", p)
}

// CompliancePolicyData is the policy page's data.
type CompliancePolicyData struct {
	Policy *compliance.Policy
	Checks []CheckScore
}

func (u *UI) compliancePolicyPage(w http.ResponseWriter, r *http.Request) error {
	svc, err := u.complianceSvc()
	if err != nil {
		return err
	}
	set, _ := svc.PolicySet(r.Context())
	pol, ok := set.Policy(r.PathValue("id"))
	if !ok {
		return errorf(http.StatusNotFound, "No policy %q is loaded.", r.PathValue("id"))
	}
	rs, err := svc.Results(r.Context(), "", "")
	if err != nil {
		return err
	}
	per := map[string]compliance.Score{}
	for _, v := range rs {
		sc := per[v.Check]
		sc.Add(v.Status)
		per[v.Check] = sc
	}
	d := CompliancePolicyData{Policy: pol}
	for _, c := range pol.Checks {
		d.Checks = append(d.Checks, CheckScore{Check: c, Score: per[c.ID]})
	}
	return u.render(w, r, http.StatusOK, "compliance_policy", Page{Title: "Policy " + pol.Name, Nav: "compliance", Data: d})
}

// ComplianceCheckData is the check page's data.
type ComplianceCheckData struct {
	Check      *compliance.Check
	Frameworks []string
	Results    []fleet.ResultView
	Score      compliance.Score
	Exceptions []store.ComplianceException
	// DefaultExpiry pre-fills the exception form (90 days ahead).
	DefaultExpiry string
}

func (u *UI) complianceCheckPage(w http.ResponseWriter, r *http.Request) error {
	svc, err := u.complianceSvc()
	if err != nil {
		return err
	}
	set, _ := svc.PolicySet(r.Context())
	c, ok := set.Check(r.PathValue("id"))
	if !ok {
		return errorf(http.StatusNotFound, "No check %q is loaded.", r.PathValue("id"))
	}
	all, err := svc.Results(r.Context(), "", "")
	if err != nil {
		return err
	}
	d := ComplianceCheckData{Check: c, Frameworks: compliance.Frameworks(), DefaultExpiry: u.now().AddDate(0, 0, 90).Format(time.DateOnly)}
	for _, v := range all {
		if v.Check == c.ID {
			d.Results = append(d.Results, v)
			d.Score.Add(v.Status)
		}
	}
	exc, err := svc.Exceptions(r.Context(), false)
	if err != nil {
		return err
	}
	for _, e := range exc {
		if e.Check == c.ID {
			d.Exceptions = append(d.Exceptions, e)
		}
	}
	p := Page{Title: "Check " + c.Title, Nav: "compliance", Data: d}
	u.takeFlash(w, r, &p)
	return u.render(w, r, http.StatusOK, "compliance_check", p)
}

// ComplianceEndpointData is the endpoint compliance page's data.
type ComplianceEndpointData struct {
	ID, Hostname string
	Score        compliance.Score
	Results      []fleet.ResultView
	Framework    string
	Frameworks   []string
}

func (u *UI) complianceEndpointPage(w http.ResponseWriter, r *http.Request) error {
	svc, err := u.complianceSvc()
	if err != nil {
		return err
	}
	ep, err := u.fleet.f.Endpoint(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "No endpoint %q.", r.PathValue("id"))
	}
	if err != nil {
		return err
	}
	fw := r.URL.Query().Get("framework")
	if fw != "" && compliance.ValidateFramework(fw) != nil {
		return errorf(http.StatusBadRequest, "Unknown framework %q.", fw)
	}
	rs, err := svc.Results(r.Context(), ep.ID, fw)
	if err != nil {
		return err
	}
	d := ComplianceEndpointData{ID: ep.ID, Hostname: ep.Hostname, Results: rs, Framework: fw, Frameworks: compliance.Frameworks()}
	// Failing first, then errors, excepted, passing.
	order := map[string]int{compliance.StatusFail: 0, compliance.StatusError: 1, compliance.StatusExcepted: 2, compliance.StatusPass: 3}
	sort.SliceStable(d.Results, func(i, j int) bool { return order[d.Results[i].Status] < order[d.Results[j].Status] })
	for _, v := range rs {
		d.Score.Add(v.Status)
	}
	return u.render(w, r, http.StatusOK, "compliance_endpoint", Page{Title: "Compliance of " + ep.Hostname, Nav: "compliance", Data: d})
}

// ComplianceExceptionsData is the exceptions page's data.
type ComplianceExceptionsData struct {
	Exceptions []store.ComplianceException
	All        bool
	Now        time.Time
}

func (u *UI) complianceExceptionsPage(w http.ResponseWriter, r *http.Request) error {
	svc, err := u.complianceSvc()
	if err != nil {
		return err
	}
	all := r.URL.Query().Get("all") == "1"
	es, err := svc.Exceptions(r.Context(), all)
	if err != nil {
		return err
	}
	p := Page{Title: "Compliance exceptions", Nav: "compliance", Data: ComplianceExceptionsData{Exceptions: es, All: all, Now: u.now()}}
	u.takeFlash(w, r, &p)
	return u.render(w, r, http.StatusOK, "compliance_exceptions", p)
}

func (u *UI) complianceCreateException(w http.ResponseWriter, r *http.Request) error {
	svc, err := u.complianceSvc()
	if err != nil {
		return err
	}
	in := fleet.ExceptionInput{Endpoint: strings.TrimSpace(r.PostFormValue("endpoint")), Check: r.PostFormValue("check"),
		Owner: r.PostFormValue("owner"), Reason: r.PostFormValue("reason")}
	back := "/compliance/checks/" + url.PathEscape(in.Check)
	exp, err := time.Parse(time.DateOnly, r.PostFormValue("expires"))
	if err != nil {
		u.setFlash(w, true, fmt.Sprintf("Expiry %q is not a date like 2026-12-31.", r.PostFormValue("expires")))
		backTo(w, r, back)
		return nil
	}
	in.Expires = exp.Add(24*time.Hour - time.Second) // through the end of that day, UTC
	e, err := svc.CreateException(r.Context(), actorOf(r), in)
	var fe *store.FieldError
	if errors.As(err, &fe) {
		u.setFlash(w, true, "Exception refused: "+fe.Error())
		backTo(w, r, back)
		return nil
	}
	if err != nil {
		return err
	}
	u.setFlash(w, false, fmt.Sprintf("Exception #%d recorded: %s accepts the risk until %s.", e.ID, e.Owner, e.ExpiresAt.Format(time.DateOnly)))
	backTo(w, r, back)
	return nil
}

func (u *UI) complianceRevokeException(w http.ResponseWriter, r *http.Request) error {
	svc, err := u.complianceSvc()
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return errorf(http.StatusNotFound, "No exception %q.", r.PathValue("id"))
	}
	_, err = svc.RevokeException(r.Context(), actorOf(r), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errorf(http.StatusNotFound, "No exception %d.", id)
	case errors.Is(err, store.ErrConflict):
		u.setFlash(w, true, fmt.Sprintf("Exception #%d is already revoked.", id))
	case err != nil:
		return err
	default:
		u.setFlash(w, false, fmt.Sprintf("Exception #%d revoked; the check counts as failing again where it fails.", id))
	}
	backTo(w, r, "/compliance/exceptions")
	return nil
}

func (u *UI) complianceEvaluate(w http.ResponseWriter, r *http.Request) error {
	svc, err := u.complianceSvc()
	if err != nil {
		return err
	}
	n, err := svc.Evaluate(r.Context(), "")
	if err != nil {
		return err
	}
	u.setFlash(w, false, fmt.Sprintf("Evaluated %d endpoints from their latest facts.", n))
	backTo(w, r, "/compliance")
	return nil
}

// ComplianceReportsData is the reports page's data.
type ComplianceReportsData struct {
	Frameworks []FrameworkScore
	From, To   string
}

func (u *UI) complianceReportsPage(w http.ResponseWriter, r *http.Request) error {
	if _, err := u.complianceSvc(); err != nil {
		return err
	}
	now := u.now().UTC()
	d := ComplianceReportsData{From: now.AddDate(0, 0, -30).Format(time.DateOnly), To: now.AddDate(0, 0, 1).Format(time.DateOnly)}
	for _, fw := range compliance.Frameworks() {
		d.Frameworks = append(d.Frameworks, FrameworkScore{ID: fw, Title: compliance.FrameworkTitle(fw)})
	}
	return u.render(w, r, http.StatusOK, "compliance_reports", Page{Title: "Compliance reports", Nav: "compliance", Data: d})
}

// complianceReportDownload serves a report like the API does, audited as
// an export.
func (u *UI) complianceReportDownload(w http.ResponseWriter, r *http.Request) error {
	svc, err := u.complianceSvc()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	fw, format := q.Get("framework"), q.Get("format")
	if compliance.ValidateFramework(fw) != nil {
		return errorf(http.StatusBadRequest, "Unknown framework %q.", fw)
	}
	if format != "html" && format != "csv" && format != "json" {
		return errorf(http.StatusBadRequest, "Format must be html, csv or json.")
	}
	from, err1 := time.Parse(time.DateOnly, q.Get("from"))
	to, err2 := time.Parse(time.DateOnly, q.Get("to"))
	if err1 != nil || err2 != nil || !to.After(from) {
		return errorf(http.StatusBadRequest, "Give from and to as dates (YYYY-MM-DD), to after from.")
	}
	rep, err := svc.Report(r.Context(), fw, from, to)
	if err != nil {
		return err
	}
	if err := u.st.AppendAudit(r.Context(), actorOf(r), "compliance.report.export", "compliance_report:"+fw, nil,
		map[string]any{"framework": fw, "from": from, "to": to, "format": format}); err != nil {
		return err
	}
	name := fmt.Sprintf("compliance-%s-%s-%s.%s", fw, from.Format("20060102"), to.Format("20060102"), format)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	switch format {
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		return rep.WriteCSV(w)
	case "html":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		return rep.WriteHTML(w)
	}
	w.Header().Set("Content-Type", "application/json")
	return rep.WriteJSON(w)
}
