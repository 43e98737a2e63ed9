package ui

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/autoresponse"
	"github.com/nocsoc/nocsoc/internal/config"
	"github.com/nocsoc/nocsoc/internal/decision"
	"github.com/nocsoc/nocsoc/internal/store"
)

var _ Responder = (*autoresponse.Service)(nil)

// newResponseEnv is a fleetEnv whose console requests blocks and host
// actions through a real autoresponse.Service with the default approval
// policy (isolation, account locks and fleet-wide scopes need an
// approver; admins approve).
func newResponseEnv(t *testing.T) (*fleetEnv, *autoresponse.Service) {
	t.Helper()
	var ar *autoresponse.Service
	e := newFleetEnvWith(t, func(f *fleetEnv, o *Options) {
		var err error
		ar, err = autoresponse.New(autoresponse.Options{Store: f.st, Jobs: f.fl, Config: config.Response{},
			Policy: decision.DefaultPolicy(), Servers: []netip.Addr{netip.MustParseAddr("192.0.2.1")}})
		if err != nil {
			t.Fatal(err)
		}
		o.Responder = ar
	})
	return e, ar
}

func (f *fleetEnv) responses(t *testing.T, status string) []store.ResponseAction {
	t.Helper()
	as, err := f.st.ListResponseActions(context.Background(), store.ResponseFilter{Status: status})
	if err != nil {
		t.Fatal(err)
	}
	return as
}

func TestResponseApprovals(t *testing.T) {
	e, _ := newResponseEnv(t)
	ctx := context.Background()
	oc, ocsrf := e.login(auth.RoleOperator, passwords[auth.RoleOperator])
	ac, acsrf := e.login(auth.RoleAdmin, passwords[auth.RoleAdmin])
	vc, vcsrf := e.login(auth.RoleViewer, passwords[auth.RoleViewer])
	with := func(csrf string, kv ...string) url.Values {
		v := url.Values{"csrf": {csrf}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}

	// A block on one endpoint runs at once: a decision, and a firewall
	// job for web1's agent.
	resp, _ := e.post(oc, "/decisions", with(ocsrf, "value", "198.51.100.20", "endpoints", "web1", "reason", "scanner"))
	if flash, msg := e.flashOf(oc, resp); !strings.Contains(flash, "Decision ") || msg != "" {
		t.Fatalf("block on web1: flash %q, error %q", flash, msg)
	}
	if ds := e.decisions(t, false); len(ds) != 1 || ds[0].Value != "198.51.100.20" {
		t.Fatalf("decisions = %+v", ds)
	}
	jobs, err := e.fl.Jobs(ctx, store.JobFilter{Endpoint: e.web1})
	if err != nil || len(jobs) != 1 || jobs[0].Action != "firewall.block" {
		t.Errorf("enforcement jobs = %+v, %v", jobs, err)
	}
	// A fleet-wide block waits for an approver; nothing is blocked yet.
	resp, _ = e.post(oc, "/decisions", with(ocsrf, "value", "198.51.100.21", "endpoints", "all"))
	if flash, _ := e.flashOf(oc, resp); !strings.Contains(flash, "waits for approval") {
		t.Errorf("fleet-wide block: %q", flash)
	}
	pending := e.responses(t, autoresponse.StatusPending)
	if len(pending) != 1 || len(e.decisions(t, false)) != 1 {
		t.Fatalf("pending = %+v", pending)
	}
	id := itoa(pending[0].ID)

	// Operators (not approvers) and viewers see the request, no buttons,
	// and are refused.
	for _, c := range []*http.Client{oc, vc} {
		_, body := e.get(c, "/approvals")
		assertSafeHTML(t, "/approvals", body)
		if !strings.Contains(body, `data-response="`+id+`"`) || strings.Contains(body, "/approvals/"+id+"/approve") {
			t.Errorf("approvals page for a non-approver:\n%.600s", body)
		}
	}
	if resp, _ := e.post(oc, "/approvals/"+id+"/approve", with(ocsrf)); resp.StatusCode != http.StatusForbidden {
		t.Errorf("operator approve: %d", resp.StatusCode)
	}
	if resp, _ := e.post(vc, "/approvals/"+id+"/approve", with(vcsrf)); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer approve: %d", resp.StatusCode)
	}
	if resp, _ := e.post(ac, "/approvals/"+id+"/approve", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("approve without csrf: %d", resp.StatusCode)
	}
	if n := len(e.responses(t, autoresponse.StatusPending)); n != 1 {
		t.Fatalf("refused approvals changed the request (%d pending)", n)
	}
	_, body := e.get(oc, "/decisions")
	if !strings.Contains(body, `1 pending`) {
		t.Errorf("decisions page lacks the pending count")
	}

	// The admin approves: the block is made.
	_, body = e.get(ac, "/approvals")
	if !strings.Contains(body, `action="/approvals/`+id+`/approve"`) {
		t.Errorf("admin sees no approve button")
	}
	resp, _ = e.post(ac, "/approvals/"+id+"/approve", with(acsrf, "note", "confirmed attacker"))
	if flash, msg := e.flashOf(ac, resp); !strings.Contains(flash, "Decision ") || msg != "" {
		t.Errorf("approve: flash %q, error %q", flash, msg)
	}
	if ds := e.decisions(t, false); len(ds) != 2 || ds[1].Value != "198.51.100.21" || ds[1].Endpoints != nil {
		t.Errorf("decisions after approval = %+v", ds)
	}
	resp, _ = e.post(ac, "/approvals/"+id+"/deny", with(acsrf))
	if _, msg := e.flashOf(ac, resp); !strings.Contains(msg, "not pending") {
		t.Errorf("deny after approve: %q", msg)
	}
	if resp, _ := e.post(ac, "/approvals/"+id+"/maybe", with(acsrf)); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown approval action: %d", resp.StatusCode)
	}

	// "Isolate host" on an alert: the endpoint from host.name, pending an
	// approver; the admin denies it.
	out := e.fire("Malware beacon", "soc", "critical", map[string]string{"host.name": "web1", "source.ip": "203.0.113.50"})
	_, body = e.get(oc, "/soc")
	if !strings.Contains(body, `formaction="/responses/isolate_host"`) {
		t.Errorf("queue lacks the isolate button")
	}
	resp, _ = e.post(oc, "/responses/isolate_host", with(ocsrf, "alert", itoa(out.AlertID), "back", "/soc"))
	if flash, _ := e.flashOf(oc, resp); !strings.Contains(flash, "waits for approval") {
		t.Errorf("isolate from alert: %q", flash)
	}
	pending = e.responses(t, autoresponse.StatusPending)
	if len(pending) != 1 || pending[0].Kind != autoresponse.KindIsolateHost || pending[0].Endpoints[0] != e.web1 || pending[0].IncidentID != out.IncidentID {
		t.Fatalf("isolation request = %+v", pending)
	}
	resp, _ = e.post(ac, "/approvals/"+itoa(pending[0].ID)+"/deny", with(acsrf))
	if _, msg := e.flashOf(ac, resp); !strings.Contains(msg, "denied") {
		t.Errorf("deny: %q", msg)
	}
	_, body = e.get(oc, "/incidents/"+itoa(out.IncidentID))
	for _, s := range []string{`<button class="btn isolate-host" type="submit">Isolate web1</button>`, "requested isolate_host", "denied response"} {
		if !strings.Contains(body, s) {
			t.Errorf("incident page lacks %q", s)
		}
	}

	// An admin isolates from the endpoint page: approved by the requester
	// (an approver), sent to the agent at once.
	_, body = e.get(ac, "/endpoints/"+e.web1)
	if !strings.Contains(body, `id="isolate-host"`) {
		t.Errorf("endpoint page lacks the isolate button")
	}
	_, vbody := e.get(vc, "/endpoints/"+e.web1)
	if strings.Contains(vbody, `id="isolate-host"`) {
		t.Errorf("viewer sees the isolate button")
	}
	resp, _ = e.post(ac, "/responses/isolate_host", with(acsrf, "endpoint", e.web1, "back", "/endpoints/"+e.web1))
	if flash, msg := e.flashOf(ac, resp); !strings.Contains(flash, "running") || msg != "" {
		t.Errorf("admin isolate: flash %q, error %q", flash, msg)
	}
	jobs, _ = e.fl.Jobs(ctx, store.JobFilter{Endpoint: e.web1, Action: "firewall.isolate"})
	if len(jobs) != 1 || jobs[0].CreatedBy != "admin" {
		t.Errorf("isolation jobs = %+v", jobs)
	}

	// Refusals name the problem and change nothing.
	before := len(e.responses(t, ""))
	for _, tc := range []struct{ path, has string }{
		{"/responses/isolate_host?x", "name the endpoint"},
	} {
		resp, _ := e.post(oc, tc.path, with(ocsrf))
		if _, msg := e.flashOf(oc, resp); !strings.Contains(msg, tc.has) {
			t.Errorf("%s: %q", tc.path, msg)
		}
	}
	resp, _ = e.post(oc, "/responses/isolate_host", with(ocsrf, "host", "nosuchhost"))
	if _, msg := e.flashOf(oc, resp); !strings.Contains(msg, `no enrolled endpoint is named "nosuchhost"`) {
		t.Errorf("unknown host: %q", msg)
	}
	if resp, _ := e.post(oc, "/responses/format_disk", with(ocsrf, "endpoint", e.web1)); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown host action: %d", resp.StatusCode)
	}
	if resp, _ := e.post(vc, "/responses/isolate_host", with(vcsrf, "endpoint", e.web1)); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer isolate: %d", resp.StatusCode)
	}
	if n := len(e.responses(t, "")); n != before {
		t.Errorf("refused requests stored %d actions", n-before)
	}
	for _, action := range []string{"response.approve", "response.deny"} {
		entries, err := e.st.ListAudit(ctx, store.AuditFilter{Actor: "admin", Action: action})
		if err != nil || len(entries) == 0 {
			t.Errorf("audit %s: %v, %v", action, entries, err)
		}
	}
}
