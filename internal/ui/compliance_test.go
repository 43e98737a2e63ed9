package ui

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/store"
)

// TestCompliancePages: the fleet env's endpoints reported inventories, so
// the built-in pack has results; every role sees the pages, only
// operators change exceptions, and report downloads are audited.
func TestCompliancePages(t *testing.T) {
	f := newFleetEnv(t)
	viewer, _ := f.login(auth.RoleViewer, passwords[auth.RoleViewer])
	op, opCSRF := f.login(auth.RoleOperator, passwords[auth.RoleOperator])

	for _, c := range []*http.Client{viewer, op} {
		resp, body := f.get(c, "/compliance")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="framework-scores"`) || !strings.Contains(body, "PCI DSS v4.0") ||
			!strings.Contains(body, "web1") || !strings.Contains(body, `href="/compliance"`) {
			t.Fatalf("overview: %d\n%s", resp.StatusCode, body)
		}
		if strings.Contains(body, `id="compliance-evaluate"`) != (c == op) {
			t.Errorf("evaluate button shown to the wrong role")
		}
	}
	resp, body := f.get(viewer, "/compliance/policies/linux-baseline")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "ssh-permit-root-login-no") {
		t.Fatalf("policy page: %d", resp.StatusCode)
	}
	resp, body = f.get(viewer, "/compliance/checks/service-absent-telnetd")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "package_absent: telnetd") || !strings.Contains(body, "not installed") ||
		strings.Contains(body, `id="exception-form"`) {
		t.Fatalf("check page (viewer): %d\n%s", resp.StatusCode, body)
	}
	resp, body = f.get(viewer, "/compliance/endpoints/"+f.web1)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="endpoint-results"`) || !strings.Contains(body, "installed 3.0.15-1 (need ≥ 3.0.15-1~deb12u1)") {
		t.Fatalf("endpoint page: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := f.get(viewer, "/compliance/checks/nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown check: %d", resp.StatusCode)
	}

	// db1's openssl 3.0.11-1 is older than the baseline's minimum: accept the risk.
	form := url.Values{"csrf": {opCSRF}, "check": {"openssl-min-version"}, "endpoint": {f.db1}, "owner": {"Jane"},
		"reason": {"vendor build"}, "expires": {time.Now().AddDate(0, 1, 0).Format(time.DateOnly)}}
	if resp, _ := f.post(viewer, "/compliance/exceptions", form); resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusBadRequest {
		t.Errorf("viewer created an exception: %d", resp.StatusCode)
	}
	resp, _ = f.post(op, "/compliance/exceptions", form)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create exception: %d", resp.StatusCode)
	}
	es, err := f.st.ComplianceExceptions(context.Background(), false)
	if err != nil || len(es) != 1 || es[0].Owner != "Jane" || es[0].CreatedBy != auth.RoleOperator {
		t.Fatalf("exceptions %+v %v", es, err)
	}
	_, body = f.get(op, "/compliance/endpoints/"+f.db1)
	if !strings.Contains(body, ">excepted<") || !strings.Contains(body, "installed 3.0.11-1") {
		t.Errorf("endpoint page lacks the excepted result")
	}
	bad := url.Values{"csrf": {opCSRF}, "check": {"openssl-min-version"}, "endpoint": {f.web1}, "owner": {""}, "reason": {"x"}, "expires": {"2099-01-01"}}
	if resp, _ := f.post(op, "/compliance/exceptions", bad); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("bad exception: %d", resp.StatusCode)
	}
	if es, _ := f.st.ComplianceExceptions(context.Background(), true); len(es) != 1 {
		t.Errorf("a refused exception was stored: %d", len(es))
	}
	_, body = f.get(op, "/compliance/exceptions")
	if !strings.Contains(body, "vendor build") || !strings.Contains(body, "Revoke") {
		t.Errorf("exceptions page:\n%s", body)
	}
	if resp, _ := f.post(op, "/compliance/exceptions/"+itoa64(es[0].ID)+"/revoke", url.Values{"csrf": {opCSRF}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("revoke: %d", resp.StatusCode)
	}
	if resp, _ := f.post(op, "/compliance/exceptions/"+itoa64(es[0].ID)+"/revoke", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("revoke without CSRF: %d", resp.StatusCode)
	}

	// Reports: page and downloads, audited.
	resp, body = f.get(viewer, "/compliance/reports")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="report-form"`) {
		t.Fatalf("reports page: %d", resp.StatusCode)
	}
	from, to := time.Now().AddDate(0, 0, -1).Format(time.DateOnly), time.Now().AddDate(0, 0, 1).Format(time.DateOnly)
	r, err := viewer.Get(f.srv.URL + "/compliance/report?framework=nist-csf-2.0&format=json&from=" + from + "&to=" + to)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(r.Body)
	r.Body.Close()
	var rep struct {
		Endpoints int `json:"endpoints"`
		Controls  []json.RawMessage
	}
	if r.StatusCode != http.StatusOK || json.Unmarshal(raw, &rep) != nil || rep.Endpoints != 2 || len(rep.Controls) == 0 {
		t.Fatalf("json report: %d %.300s", r.StatusCode, raw)
	}
	if !strings.Contains(r.Header.Get("Content-Disposition"), "compliance-nist-csf-2.0-") {
		t.Errorf("disposition %q", r.Header.Get("Content-Disposition"))
	}
	if resp, _ := f.get(viewer, "/compliance/report?framework=sox&format=csv&from="+from+"&to="+to); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown framework: %d", resp.StatusCode)
	}
	audit, err := f.st.ListAudit(context.Background(), store.AuditFilter{Action: "compliance.report.export"})
	if err != nil || len(audit) != 1 || audit[0].Actor != auth.RoleViewer {
		t.Errorf("report export audit %+v %v", audit, err)
	}
}

func itoa64(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
