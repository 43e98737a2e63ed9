package demo_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/app"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/config"
	"github.com/nocsoc/nocsoc/internal/demo"
	"github.com/nocsoc/nocsoc/internal/incident"
	"github.com/nocsoc/nocsoc/internal/store"
)

// testTick makes the demo's outage come after 3s and last 12s; check
// intervals bottom out at the config's 1s minimum.
const testTick = 100 * time.Millisecond

// poll calls cond every 50ms until it returns true or the deadline
// passes; it reports whether cond held. It never sleeps to pass: it
// only waits for the state the assertion names.
func poll(deadline time.Time, cond func() bool) bool {
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
}

func TestConfigLoads(t *testing.T) {
	d, err := demo.StartWith(context.Background(), demo.Options{RunbooksDir: "../../runbooks"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cfg, err := config.Load("demo.yaml", d.Config())
	if err != nil {
		t.Fatalf("generated config does not load: %v\n%s", err, d.Config())
	}
	names := map[string]check.Spec{}
	for _, c := range cfg.Checks {
		names[c.Name] = c
		for _, l := range []string{"service", "env", "team"} {
			if c.Labels[l] == "" {
				t.Errorf("check %s has no %s label", c.Name, l)
			}
		}
		if c.Type != check.TypePush && !strings.Contains(c.Target, "127.0.0.1:") {
			t.Errorf("check %s targets %q, want loopback", c.Name, c.Target)
		}
	}
	for _, want := range []string{"postgres", "shop-web", "shop-api", "payments", "flaky-cache", "billing-cert", "mail-relay", "shop-web-staging", "nightly-backup"} {
		if _, ok := names[want]; !ok {
			t.Errorf("config has no check %q", want)
		}
	}
	for _, child := range []string{"shop-api", "payments"} {
		if dep := names[child].DependsOn; len(dep) != 1 || dep[0] != "postgres" {
			t.Errorf("%s depends_on = %v, want [postgres]", child, dep)
		}
	}
	if len(cfg.Maintenance) != 1 || cfg.Maintenance[0].Labels["env"] != "staging" {
		t.Errorf("maintenance = %+v, want one window on env=staging", cfg.Maintenance)
	}
	if len(cfg.Inputs.Syslog) != 1 || cfg.Inputs.Syslog[0].Name != demo.SyslogInput {
		t.Errorf("syslog inputs = %+v", cfg.Inputs.Syslog)
	}
	if len(cfg.Alerting.Policies) != 2 || len(cfg.Alerting.Schedules) != 4 || len(cfg.Alerting.Channels) != 2 {
		t.Errorf("alerting: %d policies, %d schedules, %d channels; want 2, 4, 2",
			len(cfg.Alerting.Policies), len(cfg.Alerting.Schedules), len(cfg.Alerting.Channels))
	}
	if !strings.HasSuffix(cfg.Alerting.RunbooksDir, "runbooks") {
		t.Errorf("runbooks_dir = %q", cfg.Alerting.RunbooksDir)
	}
}

// TestDemoLivesWithinSeconds boots the whole server in-process on the
// demo's config and waits for each thing a newcomer should see.
func TestDemoLivesWithinSeconds(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the whole server for several seconds")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := demo.StartWith(ctx, demo.Options{Logger: logger, Tick: testTick, RunbooksDir: "../../runbooks"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "demo.yaml")
	if err := os.WriteFile(cfgPath, []byte(d.Config()), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(ctx, app.Options{
		ConfigPath: cfgPath, DataDir: filepath.Join(dir, "data"), Listen: "127.0.0.1:0",
		Logger: logger, Stderr: io.Discard, AdminPassword: "demo-test-password-123", ConfigPoll: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(ctx) }()
	driveDone := make(chan error, 1)
	go func() { driveDone <- d.Drive(ctx, a) }()
	defer func() {
		cancel()
		if err := <-runDone; err != nil {
			t.Errorf("app.Run: %v", err)
		}
		if err := <-driveDone; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Drive: %v", err)
		}
	}()

	// Some of what the demo shows is transient (the outage lasts 12s
	// here), so every expectation is watched at once in one polling loop
	// and each is recorded the first time it holds.
	type expectation struct {
		name string
		seen bool
		last string // what was observed instead, for the failure message
		cond func() (bool, string)
	}
	state := func(name string) check.State {
		v, err := a.NOC().Check(name)
		if err != nil {
			return ""
		}
		return v.Status.State
	}
	socAlert := func(ruleID, prefix string) func() (bool, string) {
		return func() (bool, string) {
			als, err := a.Store().ListAlerts(ctx, store.AlertFilter{Team: alert.TeamSOC})
			if err != nil {
				return false, err.Error()
			}
			var titles []string
			for _, al := range als {
				if al.Labels["rule_id"] == ruleID && strings.HasPrefix(al.Labels["source.ip"], prefix) && al.Origin == alert.OriginHuman {
					return true, ""
				}
				titles = append(titles, al.Title)
			}
			return false, strings.Join(titles, "; ")
		}
	}
	incidents := func(pred func(incident.Incident) bool) func() (bool, string) {
		return func() (bool, string) {
			incs, err := a.Store().ListIncidents(ctx, store.IncidentFilter{Limit: 500})
			if err != nil {
				return false, err.Error()
			}
			for _, inc := range incs {
				if pred(inc) {
					return true, ""
				}
			}
			return false, fmt.Sprintf("%d incidents", len(incs))
		}
	}
	exps := []*expectation{
		{name: "healthy checks up", cond: func() (bool, string) {
			var bad []string
			for _, c := range []string{"shop-web", "mail-relay", "nightly-backup"} {
				if st := state(c); st != check.StateUp {
					bad = append(bad, c+"="+string(st))
				}
			}
			return len(bad) == 0 && len(a.NOC().Checks()) == 9, strings.Join(bad, ", ")
		}},
		{name: "billing-cert down on expiry", cond: func() (bool, string) {
			v, err := a.NOC().Check("billing-cert")
			if err != nil || v.Status.LastResult == nil {
				return false, fmt.Sprint(err)
			}
			return v.Status.State == check.StateDown && strings.Contains(v.Status.LastResult.Error, "expires in"), v.Status.LastResult.Error
		}},
		{name: "staging in maintenance", cond: func() (bool, string) {
			st := state("shop-web-staging")
			return st == check.StateMaintenance, string(st)
		}},
		{name: "flaky-cache flapping", cond: func() (bool, string) {
			st := state("flaky-cache")
			return st == check.StateFlapping, string(st)
		}},
		{name: "postgres down, children unreachable", cond: func() (bool, string) {
			p, s, pay := state("postgres"), state("shop-api"), state("payments")
			v, _ := a.NOC().Check("payments")
			return p == check.StateDown && s == check.StateUnreachable && pay == check.StateUnreachable && v.Status.RootCause == "postgres",
				fmt.Sprintf("postgres=%s shop-api=%s payments=%s (listening %v)", p, s, pay, d.PostgresUp())
		}},
		{name: "postgres recovers", cond: func() (bool, string) {
			// Only after the outage: the whole cycle must be visible.
			return d.PostgresUp() && state("postgres") == check.StateUp && state("payments") == check.StateUp && d.Deliveries() > 0 &&
				func() bool {
					ok, _ := incidents(func(i incident.Incident) bool { return i.Labels["check"] == "postgres" })()
					return ok
				}(), ""
		}},
		{name: "SSH brute force alert", cond: socAlert("6b0f3c52-1d0e-4a53-9a51-0c1f7c2e0a04", "203.0.113.")},
		{name: "brute force followed by success alert", cond: socAlert("6b0f3c52-1d0e-4a53-9a51-0c1f7c2e0a05", "203.0.113.")},
		{name: "web scanning alert", cond: socAlert("6b0f3c52-1d0e-4a53-9a51-0c1f7c2e0a08", "198.51.100.")},
		{name: "incident acknowledged by demo", cond: incidents(func(i incident.Incident) bool {
			return i.Owner == demo.OperatorName && i.Labels["check"] == "billing-cert" && i.AcknowledgedAt != nil
		})},
		{name: "incident handed from NOC to SOC", cond: incidents(func(i incident.Incident) bool {
			return i.Handoffs > 0 && i.Team == alert.TeamSOC && i.Labels["check"] == "flaky-cache"
		})},
		{name: "incident resolved with postmortem", cond: incidents(func(i incident.Incident) bool {
			if i.Status != incident.StatusResolved || i.Labels["rule_id"] == "" {
				return false
			}
			pm, err := a.Store().Postmortem(ctx, i.ID)
			return err == nil && pm.Category == "attack" && pm.Author == demo.OperatorName
		})},
		{name: "notification delivered", cond: func() (bool, string) { return d.Deliveries() > 0, "" }},
		{name: "heartbeat received", cond: func() (bool, string) {
			v, err := a.NOC().Check("nightly-backup")
			if err != nil || v.Status.LastResult == nil {
				return false, fmt.Sprint(err)
			}
			return strings.Contains(v.Status.LastResult.Detail, "backup finished"), v.Status.LastResult.Detail
		}},
	}
	deadline := time.Now().Add(27 * time.Second)
	poll(deadline, func() bool {
		all := true
		for _, e := range exps {
			if !e.seen {
				e.seen, e.last = e.cond()
			}
			all = all && e.seen
		}
		return all
	})
	failed := false
	for _, e := range exps {
		if !e.seen {
			failed = true
			t.Errorf("never saw %s (last: %s)", e.name, e.last)
		}
	}
	if failed {
		incs, _ := a.Store().ListIncidents(ctx, store.IncidentFilter{Limit: 500})
		for _, i := range incs {
			t.Logf("incident %d %q team=%s status=%s owner=%s handoffs=%d triggered=%s labels=%v", i.ID, i.Title, i.Team, i.Status, i.Owner, i.Handoffs, i.TriggeredAt.Format(time.StampMilli), i.Labels)
		}
	}
}
