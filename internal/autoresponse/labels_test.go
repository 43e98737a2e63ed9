package autoresponse_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/autoresponse"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/config"
	"github.com/nocsoc/nocsoc/internal/decision"
	"github.com/nocsoc/nocsoc/internal/incident"
	"github.com/nocsoc/nocsoc/internal/sigma"
	"github.com/nocsoc/nocsoc/internal/store"
)

// enroll adds an endpoint with agent labels.
func (f *fixture) enroll(t *testing.T, id, host string, labels map[string]string) {
	t.Helper()
	ctx := context.Background()
	tok := sha256.Sum256([]byte("enroll-" + id))
	if _, err := f.st.CreateEnrollmentToken(ctx, store.Actor{Name: "admin"}, store.EnrollmentToken{Hash: hex.EncodeToString(tok[:]), Prefix: "enroll",
		ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	cred := sha256.Sum256([]byte("cred-" + id))
	if _, err := f.st.EnrollEndpoint(ctx, hex.EncodeToString(tok[:]), store.Endpoint{ID: id, CredentialHash: hex.EncodeToString(cred[:]),
		Hostname: host, OS: "linux", AgentLabels: labels}, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// sent returns "action endpoint" for every job spec since the n-th.
func (j *jobs) sent(n int) []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []string
	for _, s := range j.specs[n:] {
		for _, e := range s.Endpoints {
			out = append(out, s.Action+" "+e)
		}
	}
	sort.Strings(out)
	return out
}

func (j *jobs) count() int { j.mu.Lock(); defer j.mu.Unlock(); return len(j.specs) }

// TestLabelScopedDecision: a decision for role=web is enforced on the two
// of three endpoints carrying the label; relabelling moves it (the block
// follows the label, the endpoint that lost it is unblocked); it needs no
// approval as fleet-wide would; bad selectors are refused with nothing
// written.
func TestLabelScopedDecision(t *testing.T) {
	f := setup(t, config.Response{})
	ctx := context.Background()
	const web2, db1 = "1c0ffee0-0000-4000-8000-000000000002", "1c0ffee0-0000-4000-8000-000000000003"
	if _, err := f.st.SetEndpointLabels(ctx, store.Actor{Name: "admin"}, f.ep, map[string]string{"role": "web"}); err != nil {
		t.Fatal(err)
	}
	f.enroll(t, web2, "web2", map[string]string{"role": "web", "env": "prod"})
	f.enroll(t, db1, "db1", map[string]string{"role": "db", "env": "prod"})

	op := autoresponse.Requester{User: store.User{Name: "junior", Role: "operator"}}
	a, err := f.svc.Request(ctx, op, autoresponse.Request{Kind: "block_ip", Value: "203.0.113.77", Duration: "1h", Labels: []byte(`{"role":"web"}`)})
	if err != nil || a.Status != autoresponse.StatusRunning || a.NeedsApproval || a.DecisionID == 0 {
		t.Fatalf("label-scoped block = %+v, %v; want running without approval", a, err)
	}
	if got, want := f.jobs.sent(0), []string{"firewall.block " + f.ep, "firewall.block " + web2}; !slices.Equal(got, want) {
		t.Fatalf("jobs = %v, want %v", got, want)
	}
	d, err := f.st.GetDecision(ctx, a.DecisionID)
	if err != nil || d.Labels["role"] != "web" {
		t.Fatalf("decision = %+v, %v", d, err)
	}
	if n, _ := f.svc.ResolveCount(ctx, nil, d.Labels); n != 2 {
		t.Errorf("ResolveCount = %d, want 2", n)
	}
	// A pass with nothing changed sends nothing.
	n := f.jobs.count()
	if err := f.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if f.jobs.count() != n {
		t.Errorf("idle pass sent %v", f.jobs.sent(n))
	}

	// Relabel: web2 becomes a db (its agent reports so), db1 becomes a
	// web (an admin says so).
	if _, err := f.st.RecordHeartbeat(ctx, web2, store.Heartbeat{At: time.Now(), IntervalMS: 1000, Labels: map[string]string{"role": "db"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.SetEndpointLabels(ctx, store.Actor{Name: "admin"}, db1, map[string]string{"role": "web"}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(10 * time.Minute)
	if err := f.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := f.jobs.sent(n), []string{"firewall.block " + db1, "firewall.unblock " + web2}; !slices.Equal(got, want) {
		t.Errorf("after relabel: jobs = %v, want %v", got, want)
	}
	for _, s := range f.jobs.specs[n:] {
		if s.Action == "firewall.block" && s.Args["duration"] != "50m0s" {
			t.Errorf("late block lasts %s, want the 50m the decision has left", s.Args["duration"])
		}
	}
	// Expiry unblocks where the block is now, not where it started.
	n = f.jobs.count()
	f.clock.Advance(time.Hour)
	if err := f.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := f.jobs.sent(n), []string{"firewall.unblock " + f.ep, "firewall.unblock " + db1}; !slices.Equal(got, want) {
		t.Errorf("expiry: jobs = %v, want %v", got, want)
	}

	// Bad selectors: refused, naming the field, nothing stored.
	before, _ := f.svc.List(ctx, store.ResponseFilter{})
	ds, _ := f.st.ListDecisions(ctx, f.clock.Now(), true, 0)
	for _, c := range []struct {
		req   autoresponse.Request
		field string
	}{
		{autoresponse.Request{Kind: "block_ip", Value: "203.0.113.78", Labels: []byte(`{}`)}, "labels"},
		{autoresponse.Request{Kind: "block_ip", Value: "203.0.113.78", Labels: []byte(`{"role":"web"}`), Endpoints: []byte(fmt.Sprintf("[%q]", f.ep))}, "labels"},
		{autoresponse.Request{Kind: "block_ip", Value: "203.0.113.78", Labels: []byte(`{"Bad Key":"x"}`)}, "labels.Bad Key"},
		{autoresponse.Request{Kind: "isolate_host", Labels: []byte(`{"role":""}`)}, "labels.role"},
		{autoresponse.Request{Kind: "kill_process", Labels: []byte(`{"role":"web"}`), PID: 99, Name: "x"}, "endpoints"},
	} {
		_, err := f.svc.Request(ctx, op, c.req)
		var fe *store.FieldError
		if !asField(err, &fe) || fe.Field != c.field {
			t.Errorf("%s %s: %v, want a field error on %s", c.req.Kind, c.req.Labels, err, c.field)
		}
	}
	after, _ := f.svc.List(ctx, store.ResponseFilter{})
	ds2, _ := f.st.ListDecisions(ctx, f.clock.Now(), true, 0)
	if len(after) != len(before) || len(ds2) != len(ds) {
		t.Errorf("bad selectors stored %d actions, %d decisions", len(after)-len(before), len(ds2)-len(ds))
	}
}

// TestApplyKeepsCounters: a reload changes the limits, not what has
// already been counted; a bad section is refused and the old one stays.
func TestApplyKeepsCounters(t *testing.T) {
	f := setup(t, config.Response{RateLimits: map[string]config.RateLimit{"block_ip": {Count: 3, Per: check.Duration(time.Minute)}}})
	for i := 0; i < 2; i++ {
		f.fire(fmt.Sprintf("203.0.113.%d", i+1), "web1")
	}
	if err := f.svc.Apply(config.Response{Allow: []string{"198.51.100.0/24"},
		RateLimits: map[string]config.RateLimit{"block_ip": {Count: 4, Per: check.Duration(time.Minute)}}}); err != nil {
		t.Fatal(err)
	}
	for i := 2; i < 6; i++ {
		f.fire(fmt.Sprintf("203.0.113.%d", i+1), "web1")
	}
	if n := len(f.jobs.actions()); n != 4 {
		t.Errorf("%d blocks, want 4: the two before the reload count against the new limit", n)
	}
	f.fire("198.51.100.7", "web1")
	if f.svc.Stats().RefusedAllowList != 1 {
		t.Errorf("the reloaded allow-list is not in force: %+v", f.svc.Stats())
	}
	if err := f.svc.Apply(config.Response{Allow: []string{"not-an-address"}}); err == nil || !strings.Contains(err.Error(), "response.allow") {
		t.Errorf("bad section: %v", err)
	}
	if !slices.ContainsFunc(f.svc.Policy().Allow, func(p netip.Prefix) bool { return p.String() == "198.51.100.0/24" }) {
		t.Errorf("the refused section replaced the policy: %v", f.svc.Policy().Allow)
	}
}

// TestAutomaticResponseOnIncidentTimeline: a rule-triggered block lands
// on its alert's incident timeline: request, execution (decision and
// expiry) and result per endpoint. When the incident appears only after
// the action ran, the reconciler links it and notes what happened.
func TestAutomaticResponseOnIncidentTimeline(t *testing.T) {
	f := setup(t, config.Response{})
	ctx := context.Background()
	now := f.clock.Now()
	newAlert := func(ip string) alert.Alert {
		return alert.Alert{Source: "sigma:rule-bf", Title: "SSH Brute Force (source.ip=" + ip + ")", Team: alert.TeamSOC, Origin: alert.OriginHuman,
			Severity: "high", StartedAt: now, Labels: map[string]string{"rule_id": "rule-bf", "source.ip": ip},
			Annotations: map[string]string{"host.name": "web1"}}
	}
	// attach files a (as the incident workflow would) under a new incident.
	attach := func(a alert.Alert) int64 {
		t.Helper()
		var id int64
		err := f.st.Batch(ctx, func(tx *store.Tx) error {
			inc, err := tx.CreateIncident(incident.Incident{Title: a.Title, Severity: "high", Team: alert.TeamSOC, Origin: alert.OriginHuman, TriggeredAt: now})
			if err != nil {
				return err
			}
			id = inc.ID
			a.IncidentID = inc.ID
			_, _, err = tx.UpsertAlert(a)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	kinds := func(inc int64) string {
		t.Helper()
		es, err := f.st.Timeline(ctx, inc, 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			if strings.HasPrefix(e.Kind, "response.") {
				out = append(out, e.Kind)
			}
		}
		return strings.Join(out, " ")
	}

	// The incident exists when the rule fires (the usual case).
	a := newAlert("203.0.113.5")
	a.Fingerprint = alert.Fingerprint(a.Labels)
	inc := attach(a)
	f.svc.HandleAlert(ctx, a, []*sigma.Rule{f.rule})
	as, _ := f.svc.List(ctx, store.ResponseFilter{IncidentID: inc})
	if len(as) != 1 || as[0].Origin != decision.OriginRule || as[0].AlertFingerprint != a.Fingerprint {
		t.Fatalf("actions of incident %d = %+v", inc, as)
	}
	f.svc.OnJobResult(ctx, store.Job{ID: fmt.Sprintf("job-%d", f.jobs.count()), Origin: "response", Status: "succeeded", EndpointID: f.ep})
	if got := kinds(inc); got != "response.request response.execute response.result" {
		t.Errorf("timeline = %q", got)
	}
	es, _ := f.st.Timeline(ctx, inc, 100, 0)
	text := ""
	for _, e := range es {
		text += e.Message + "\n"
	}
	for _, want := range []string{fmt.Sprintf("decision #%d", as[0].DecisionID), "until " + now.Add(4*time.Hour).Format(time.RFC3339), "web1 (" + f.ep + "): succeeded"} {
		if !strings.Contains(text, want) {
			t.Errorf("timeline lacks %q:\n%s", want, text)
		}
	}

	// The incident appears later: linked on the next pass.
	b := newAlert("203.0.113.6")
	f.svc.HandleAlert(ctx, b, []*sigma.Rule{f.rule})
	un, _ := f.st.UnlinkedResponseActions(ctx, now.Add(-time.Minute))
	if len(un) != 1 {
		t.Fatalf("unlinked = %+v", un)
	}
	b.Fingerprint = alert.Fingerprint(b.Labels)
	inc2 := attach(b)
	if err := f.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	f.svc.OnJobResult(ctx, store.Job{ID: fmt.Sprintf("job-%d", f.jobs.count()), Origin: "response", Status: "failed", Error: "nft: permission denied", EndpointID: f.ep})
	if got := kinds(inc2); got != "response.link response.result" {
		t.Errorf("late incident timeline = %q", got)
	}
	if got, _ := f.st.GetResponseAction(ctx, un[0].ID); got.IncidentID != inc2 || got.Status != autoresponse.StatusFailed {
		t.Errorf("late action = %+v", got)
	}
}

func asField(err error, fe **store.FieldError) bool { return errors.As(err, fe) }
