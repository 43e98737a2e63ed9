package store

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/decision"
)

func labelEndpoint(t *testing.T, s *Store, id string, labels map[string]string) {
	t.Helper()
	ctx := context.Background()
	h := func(c byte) string { return strings.Repeat(string(c), 64) }
	tok := h(id[0])
	if _, err := s.CreateEnrollmentToken(ctx, admin, EnrollmentToken{Hash: tok, Prefix: "nse_x", ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnrollEndpoint(ctx, tok, Endpoint{ID: id, CredentialHash: h(id[0] + 1), Hostname: "host-" + id[:1], AgentLabels: labels}, t0); err != nil {
		t.Fatal(err)
	}
}

// TestEndpointLabels: agent labels stored at enrollment and replaced by a
// heartbeat (nil leaves them), admin labels merged over them (an empty
// value removes one), audited; bad labels refused with nothing written.
func TestEndpointLabels(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const id = "1aaaaaaa-0000-4000-8000-000000000000"
	labelEndpoint(t, s, id, map[string]string{"role": "web", "env": "prod"})
	e, err := s.Endpoint(ctx, id)
	if err != nil || !reflect.DeepEqual(e.Labels, map[string]string{"role": "web", "env": "prod"}) {
		t.Fatalf("after enrollment: %v, %v", e.Labels, err)
	}
	if _, err := s.RecordHeartbeat(ctx, id, Heartbeat{At: t0, IntervalMS: 1000}); err != nil {
		t.Fatal(err)
	}
	if e, _ = s.Endpoint(ctx, id); len(e.Labels) != 2 {
		t.Errorf("a heartbeat without labels changed them: %v", e.Labels)
	}
	if _, err := s.RecordHeartbeat(ctx, id, Heartbeat{At: t0, IntervalMS: 1000, Labels: map[string]string{"role": "db", "dc": "fra"}}); err != nil {
		t.Fatal(err)
	}
	before := auditCount(t, s)
	e, err = s.SetEndpointLabels(ctx, admin, id, map[string]string{"env": "staging", "dc": ""})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"role": "db", "env": "staging"}
	if !reflect.DeepEqual(e.Labels, want) {
		t.Errorf("merged = %v, want %v", e.Labels, want)
	}
	if e, _ = s.Endpoint(ctx, id); !reflect.DeepEqual(e.Labels, want) || e.AgentLabels["dc"] != "fra" {
		t.Errorf("stored = %+v", e)
	}
	if auditCount(t, s) != before+1 {
		t.Error("label change not audited")
	}
	for _, bad := range []map[string]string{{"Role": "x"}, {"role": "a\x00b"}, {"role": strings.Repeat("x", 129)}} {
		if _, err := s.SetEndpointLabels(ctx, admin, id, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("SetEndpointLabels(%v) = %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := s.SetEndpointLabels(ctx, admin, "nope", map[string]string{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown endpoint: %v", err)
	}
	if e2, _ := s.Endpoint(ctx, id); !reflect.DeepEqual(e2.Labels, want) || auditCount(t, s) != before+1 {
		t.Errorf("refused changes wrote something: %v", e2.Labels)
	}
}

// TestLabelDecisionRoundTrip: a label selector survives the store, the
// bouncers of matching endpoints get the decision and others do not, and
// the enforcement record follows a relabel.
func TestLabelDecisionRoundTrip(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const web, db = "1aaaaaaa-0000-4000-8000-000000000000", "2aaaaaaa-0000-4000-8000-000000000000"
	labelEndpoint(t, s, web, map[string]string{"role": "web"})
	labelEndpoint(t, s, db, map[string]string{"role": "db"})
	d, err := decision.DefaultPolicy().Validate(decision.Request{Value: "203.0.113.9", Labels: []byte(`{"role":"web"}`)}, "alice", t0)
	if err != nil {
		t.Fatal(err)
	}
	d, err = s.CreateDecision(ctx, admin, d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.GetDecision(ctx, d.ID)
	if err != nil || !reflect.DeepEqual(got.Labels, map[string]string{"role": "web"}) || got.Endpoints != nil || got.FleetWide() {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for ep, want := range map[string]int{web: 1, db: 0, "": 0} {
		ds, err := s.ActiveDecisionsFor(ctx, ep, t0)
		if err != nil || len(ds) != want {
			t.Errorf("bouncer bound to %q: %d decisions (%v), want %d", ep, len(ds), err, want)
		}
	}
	for ep, want := range map[string]int{web: 1, db: 0} {
		b, err := s.CreateBouncer(ctx, admin, Bouncer{Name: "b-" + ep[:1], KeyHash: strings.Repeat(ep[:1], 64), KeyPrefix: "nsc_", Endpoint: ep})
		if err != nil {
			t.Fatal(err)
		}
		added, _, err := s.DecisionStream(ctx, b, true, t0, "127.0.0.1")
		if err != nil || len(added) != want {
			t.Errorf("stream of the bouncer bound to %s: %d decisions (%v), want %d", ep, len(added), err, want)
		}
	}
	if _, err := s.MarkDecisionEnforced(ctx, d.ID, []string{web}, t0); err != nil {
		t.Fatal(err)
	}
	enf, err := s.EnforcedLabelDecisions(ctx, t0)
	if err != nil || len(enf) != 1 || !reflect.DeepEqual(enf[0].Endpoints, []string{web}) {
		t.Fatalf("enforced = %+v, %v", enf, err)
	}
	if err := s.SetDecisionEnforcement(ctx, d.ID, []string{web, db}); err != nil {
		t.Fatal(err)
	}
	if enf, _ = s.EnforcedLabelDecisions(ctx, t0); !reflect.DeepEqual(enf[0].Endpoints, []string{web, db}) {
		t.Errorf("after relabel: %+v", enf)
	}
	if enf, _ = s.EnforcedLabelDecisions(ctx, d.Until); len(enf) != 0 {
		t.Errorf("expired decision still listed: %+v", enf)
	}
	// Response actions keep their selector and alert.
	a, err := s.CreateResponseAction(ctx, admin, ResponseAction{Kind: "isolate_host", Status: "pending", Origin: "rule",
		Labels: map[string]string{"role": "web"}, AlertFingerprint: "fp1"}, "asked")
	if err != nil {
		t.Fatal(err)
	}
	if a, err = s.GetResponseAction(ctx, a.ID); err != nil || a.Labels["role"] != "web" || a.AlertFingerprint != "fp1" {
		t.Errorf("response round trip: %+v, %v", a, err)
	}
	if un, err := s.UnlinkedResponseActions(ctx, t0.Add(-time.Minute)); err != nil || len(un) != 1 {
		t.Errorf("unlinked = %+v, %v", un, err)
	}
	if _, err := s.IncidentForAlert(ctx, "fp1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("incident of an unknown alert: %v", err)
	}
	if _, err := s.LinkResponseIncident(ctx, admin, a.ID, 999, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("link to a missing incident: %v", err)
	}
}

// TestBouncerStreamRelabel: a bouncer whose endpoint is relabelled gets
// label-scoped decisions deleted and added on its next ordinary poll, not
// only at its next startup pull.
func TestBouncerStreamRelabel(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const web = "1aaaaaaa-0000-4000-8000-000000000000"
	labelEndpoint(t, s, web, map[string]string{"role": "web"})
	d, err := decision.DefaultPolicy().Validate(decision.Request{Value: "203.0.113.9", Labels: []byte(`{"role":"web"}`)}, "alice", t0)
	if err != nil {
		t.Fatal(err)
	}
	if d, err = s.CreateDecision(ctx, admin, d); err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateBouncer(ctx, admin, Bouncer{Name: "edge", KeyHash: strings.Repeat("e", 64), KeyPrefix: "nsc_", Endpoint: web})
	if err != nil {
		t.Fatal(err)
	}
	ids := func(ds []decision.Decision) []int64 {
		var out []int64
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	poll := func(step int, startup bool, wantAdded, wantDeleted []int64) {
		t.Helper()
		added, deleted, err := s.DecisionStream(ctx, b, startup, t0.Add(time.Duration(step)*time.Second), "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ids(added), wantAdded) || !reflect.DeepEqual(ids(deleted), wantDeleted) {
			t.Errorf("poll %d: added %v deleted %v, want %v and %v", step, ids(added), ids(deleted), wantAdded, wantDeleted)
		}
	}
	poll(1, true, []int64{d.ID}, nil)
	poll(2, false, nil, nil)
	if _, err := s.SetEndpointLabels(ctx, admin, web, map[string]string{"role": "db"}); err != nil {
		t.Fatal(err)
	}
	poll(3, false, nil, []int64{d.ID})
	poll(4, false, nil, nil)
	if _, err := s.SetEndpointLabels(ctx, admin, web, map[string]string{}); err != nil {
		t.Fatal(err)
	}
	poll(5, false, []int64{d.ID}, nil)
}
