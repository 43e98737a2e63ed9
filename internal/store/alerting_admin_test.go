package store

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/incident"
	"github.com/nocsoc/nocsoc/internal/notify"
	"github.com/nocsoc/nocsoc/internal/oncall"
	"github.com/nocsoc/nocsoc/internal/runbook"
)

func TestIntegrations(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	it, err := s.CreateIntegration(ctx, admin, alert.Integration{Name: "prom", Type: alert.IntegrationAlertmanager, KeyHash: "h1", KeyPrefix: "nsi_ab"})
	if err != nil || it.ID == 0 || it.CreatedBy != "admin" || !it.CreatedAt.Equal(t0) {
		t.Fatalf("create: %+v %v", it, err)
	}
	for _, dup := range []alert.Integration{
		{Name: "PROM", Type: alert.IntegrationEvents, KeyHash: "h2"},
		{Name: "other", Type: alert.IntegrationEvents, KeyHash: "h1"},
	} {
		if _, err := s.CreateIntegration(ctx, admin, dup); !errors.Is(err, ErrConflict) {
			t.Errorf("duplicate %+v: %v", dup, err)
		}
	}
	var fe *FieldError
	if _, err := s.CreateIntegration(ctx, admin, alert.Integration{Name: "x", Type: "sms", KeyHash: "h3"}); !errors.As(err, &fe) || fe.Field != "type" {
		t.Errorf("bad type: %v", err)
	}
	got, err := s.IntegrationByKeyHash(ctx, "h1")
	if err != nil || got.ID != it.ID || got.KeyHash != "h1" {
		t.Errorf("by hash: %+v %v", got, err)
	}
	if _, err := s.IntegrationByKeyHash(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown hash: %v", err)
	}
	if err := s.DisableIntegration(ctx, admin, it.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetIntegration(ctx, it.ID); !got.Disabled {
		t.Errorf("not disabled: %+v", got)
	}
	if err := s.DisableIntegration(ctx, admin, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("disable unknown: %v", err)
	}
	if _, err := s.GetIntegration(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("get unknown: %v", err)
	}
	if list, err := s.ListIntegrations(ctx); err != nil || len(list) != 1 {
		t.Errorf("list: %+v %v", list, err)
	}
	entries, _ := s.ListAudit(ctx, AuditFilter{Target: "integration:1"})
	if len(entries) != 2 || strings.Contains(string(entries[1].After), "h1") {
		t.Errorf("audit: %d entries, %s", len(entries), entries[1].After)
	}
}

func TestSilences(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	sl, err := s.CreateSilence(ctx, admin, alert.Silence{Matchers: []string{`check="web"`}, StartsAt: t0, EndsAt: t0.Add(time.Hour), Comment: "deploy"})
	if err != nil || sl.ID == 0 || sl.CreatedBy != "admin" {
		t.Fatalf("create: %+v %v", sl, err)
	}
	past, err := s.CreateSilence(ctx, admin, alert.Silence{Matchers: []string{`a="b"`}, StartsAt: t0.Add(-2 * time.Hour), EndsAt: t0.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		field string
		sl    alert.Silence
	}{
		{"matchers", alert.Silence{StartsAt: t0, EndsAt: t0.Add(time.Hour)}},
		{"matchers[1]", alert.Silence{Matchers: []string{`a="b"`, " "}, StartsAt: t0, EndsAt: t0.Add(time.Hour)}},
		{"ends_at", alert.Silence{Matchers: []string{`a="b"`}, StartsAt: t0, EndsAt: t0}},
	}
	for _, tc := range bad {
		var fe *FieldError
		if _, err := s.CreateSilence(ctx, admin, tc.sl); !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: %v", tc.field, err)
		}
	}
	if active, _ := s.ListSilences(ctx, false); len(active) != 1 || active[0].ID != sl.ID {
		t.Errorf("active: %+v", active)
	}
	if all, _ := s.ListSilences(ctx, true); len(all) != 2 {
		t.Errorf("all: %+v", all)
	}
	exp, err := s.ExpireSilence(ctx, admin, sl.ID, t0.Add(time.Minute))
	if err != nil || exp.ExpiredAt == nil {
		t.Fatalf("expire: %+v %v", exp, err)
	}
	if active, _ := s.ListSilences(ctx, false); len(active) != 0 {
		t.Errorf("active after expire: %+v", active)
	}
	if _, err := s.ExpireSilence(ctx, admin, sl.ID, t0.Add(2*time.Minute)); !errors.Is(err, ErrConflict) {
		t.Errorf("expire twice: %v", err)
	}
	if _, err := s.ExpireSilence(ctx, admin, past.ID, t0); !errors.Is(err, ErrConflict) {
		t.Errorf("expire ended: %v", err)
	}
	if _, err := s.ExpireSilence(ctx, admin, 999, t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("expire unknown: %v", err)
	}
	if got, err := s.GetSilence(ctx, sl.ID); err != nil || got.ExpiredAt == nil || got.Matchers[0] != `check="web"` {
		t.Errorf("get: %+v %v", got, err)
	}
	if _, err := s.GetSilence(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("get unknown: %v", err)
	}
}

func TestChannelsKeepSecretsOutOfAudit(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	hook, err := s.CreateChannel(ctx, admin, notify.Channel{Name: "ops-hook", Type: notify.TypeWebhook, URL: "http://127.0.0.1:9/hook", Secret: "hmac-key-123"})
	if err != nil {
		t.Fatal(err)
	}
	mail, err := s.CreateChannel(ctx, admin, notify.Channel{Name: "mail", Type: notify.TypeEmail, Email: &notify.EmailSettings{
		To: []string{"ops@example.test"}, From: "nocsoc@example.test", Host: "127.0.0.1", Port: 2525, Username: "u", Password: "smtp-pass-456"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.ChannelByName(ctx, "OPS-HOOK")
	if err != nil || got.Secret != "hmac-key-123" {
		t.Errorf("by name: %+v %v", got, err)
	}
	gm, err := s.GetChannel(ctx, mail.ID)
	if err != nil || gm.Email == nil || gm.Email.Password != "smtp-pass-456" || gm.Email.Port != 2525 {
		t.Errorf("get mail: %+v %v", gm, err)
	}

	// Updating without secrets keeps them; with a new one replaces it.
	hook.URL, hook.Secret = "http://127.0.0.1:9/v2", ""
	if _, err := s.UpdateChannel(ctx, admin, hook); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetChannel(ctx, hook.ID); got.Secret != "hmac-key-123" || got.URL != "http://127.0.0.1:9/v2" {
		t.Errorf("after update: %+v", got)
	}
	hook.Secret = "rotated-789"
	if _, err := s.UpdateChannel(ctx, admin, hook); err != nil {
		t.Fatal(err)
	}
	gm.Email.Password = ""
	gm.Email.To = []string{"noc@example.test"}
	if _, err := s.UpdateChannel(ctx, admin, gm); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetChannel(ctx, mail.ID); got.Email.Password != "smtp-pass-456" || got.Email.To[0] != "noc@example.test" {
		t.Errorf("mail after update: %+v", got.Email)
	}
	dup := hook
	dup.ID = mail.ID
	dup.Name = "OPS-HOOK"
	if _, err := s.UpdateChannel(ctx, admin, dup); !errors.Is(err, ErrConflict) {
		t.Errorf("rename onto another: %v", err)
	}
	if _, err := s.CreateChannel(ctx, admin, notify.Channel{Name: "MAIL", Type: notify.TypeSlack, URL: "http://127.0.0.1:9"}); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate name: %v", err)
	}
	for _, bad := range []notify.Channel{
		{Name: "x", Type: "pager"},
		{Name: "x", Type: notify.TypeSlack},
		{Name: "x", Type: notify.TypeEmail, Email: &notify.EmailSettings{From: "a", Host: "b"}},
	} {
		if _, err := s.CreateChannel(ctx, admin, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad channel %+v: %v", bad, err)
		}
	}
	if err := s.DeleteChannel(ctx, admin, hook.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteChannel(ctx, admin, hook.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}
	if _, err := s.UpdateChannel(ctx, admin, hook); !errors.Is(err, ErrNotFound) {
		t.Errorf("update deleted: %v", err)
	}
	if list, err := s.ListChannels(ctx); err != nil || len(list) != 1 || list[0].Email.Password != "smtp-pass-456" {
		t.Errorf("list: %+v %v", list, err)
	}

	entries, err := s.ListAudit(ctx, AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	marked := 0
	for _, e := range entries {
		for _, raw := range []string{string(e.Before), string(e.After)} {
			for _, secret := range []string{"hmac-key-123", "smtp-pass-456", "rotated-789"} {
				if strings.Contains(raw, secret) {
					t.Errorf("audit %s %s contains a secret: %s", e.Action, e.Target, raw)
				}
			}
			var fields map[string]any
			if raw != "" {
				if err := json.Unmarshal([]byte(raw), &fields); err != nil {
					t.Fatal(err)
				}
			}
			if fields["secret"] == secretMark || fields["email_password"] == secretMark {
				marked++
			}
		}
	}
	if marked == 0 {
		t.Error("audit never marks a set secret")
	}
}

func TestSchedulesAndPolicies(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	sc := oncall.Schedule{Name: "noc-l1", Team: alert.TeamNOC, Tier: "L1", TimeZone: "UTC", Users: []string{"alice", "bob"},
		Rotation: "weekly", Handover: "09:00", Start: t0}
	sc, err := s.CreateSchedule(ctx, admin, sc)
	if err != nil || sc.ID == 0 {
		t.Fatalf("create schedule: %+v %v", sc, err)
	}
	if _, err := s.CreateSchedule(ctx, admin, oncall.Schedule{Name: "NOC-L1", Team: "noc", Users: []string{"c"}}); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate schedule: %v", err)
	}
	if _, err := s.CreateSchedule(ctx, admin, oncall.Schedule{Name: "x", Team: "ops", Users: []string{"c"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad team: %v", err)
	}
	sc.Users = append(sc.Users, "carol")
	sc.Overrides = []oncall.Override{{User: "dave", Start: t0, End: t0.Add(time.Hour)}}
	if _, err := s.UpdateSchedule(ctx, admin, sc); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSchedule(ctx, sc.ID)
	if err != nil || len(got.Users) != 3 || got.Overrides[0].User != "dave" || !got.Start.Equal(t0) || got.ID != sc.ID {
		t.Errorf("get schedule: %+v %v", got, err)
	}
	if list, _ := s.ListSchedules(ctx); len(list) != 1 {
		t.Errorf("list schedules: %+v", list)
	}
	if err := s.DeleteSchedule(ctx, admin, sc.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSchedule(ctx, sc.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("get deleted schedule: %v", err)
	}
	if err := s.DeleteSchedule(ctx, admin, sc.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete deleted schedule: %v", err)
	}
	if _, err := s.UpdateSchedule(ctx, admin, sc); !errors.Is(err, ErrNotFound) {
		t.Errorf("update deleted schedule: %v", err)
	}

	p := oncall.Policy{Name: "default", Repeat: 1, Tiers: []oncall.Tier{
		{Name: "L1", Timeout: check.Duration(5 * time.Minute), Targets: []oncall.Target{{Type: "schedule", Name: "noc-l1"}}},
		{Name: "L2", Timeout: check.Duration(10 * time.Minute), Targets: []oncall.Target{{Type: "user", Name: "carol"}}},
	}}
	p, err = s.CreatePolicy(ctx, admin, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreatePolicy(ctx, admin, oncall.Policy{Name: "Default", Tiers: p.Tiers}); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate policy: %v", err)
	}
	var fe *FieldError
	if _, err := s.CreatePolicy(ctx, admin, oncall.Policy{Name: "x", Tiers: []oncall.Tier{{Name: "L1"}}}); !errors.As(err, &fe) || fe.Field != "tiers[0].timeout" {
		t.Errorf("bad timeout: %v", err)
	}
	got2, err := s.PolicyByName(ctx, "DEFAULT")
	if err != nil || len(got2.Tiers) != 2 || got2.Tiers[1].Timeout.D() != 10*time.Minute || got2.Repeat != 1 {
		t.Errorf("by name: %+v %v", got2, err)
	}
	p.Repeat = 3
	if _, err := s.UpdatePolicy(ctx, admin, p); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetPolicy(ctx, p.ID); got.Repeat != 3 {
		t.Errorf("after update: %+v", got)
	}
	if list, _ := s.ListPolicies(ctx); len(list) != 1 {
		t.Errorf("list policies: %+v", list)
	}

	// An open incident following the policy blocks its deletion.
	in := testIncident("web")
	in.PolicyID = p.ID
	inc := mustIncident(t, s, in)
	if err := s.DeletePolicy(ctx, admin, p.ID); !errors.Is(err, ErrConflict) {
		t.Errorf("delete in-use policy: %v", err)
	}
	res := t0.Add(time.Hour)
	inc.Status, inc.ResolvedAt = incident.StatusResolved, &res
	batch(t, s, func(tx *Tx) error { return tx.UpdateIncident(inc) })
	if err := s.DeletePolicy(ctx, admin, p.ID); err != nil {
		t.Errorf("delete after resolve: %v", err)
	}
	if _, err := s.GetPolicy(ctx, p.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("get deleted policy: %v", err)
	}
	if err := s.DeletePolicy(ctx, admin, p.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete deleted policy: %v", err)
	}
}

func TestRunbooks(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	api, err := s.CreateRunbook(ctx, admin, runbook.Runbook{Name: "manual", Title: "Manual", Markdown: "# x\n- [ ] a", Checks: []string{"web"}, Provisioned: true})
	if err != nil || api.ID == 0 || api.Provisioned || api.UpdatedBy != "admin" {
		t.Fatalf("create: %+v %v", api, err)
	}
	if _, err := s.CreateRunbook(ctx, admin, runbook.Runbook{Name: "MANUAL"}); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate: %v", err)
	}
	api.Matchers = []string{`severity="critical"`}
	if _, err := s.UpdateRunbook(ctx, admin, api); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.RunbookByName(ctx, "Manual"); !slices.Equal(got.Matchers, api.Matchers) || !slices.Equal(got.Checks, []string{"web"}) {
		t.Errorf("by name: %+v", got)
	}

	dir := []runbook.Runbook{{Name: "disk-full", Title: "Disk full", Markdown: "v1"}, {Name: "brute-force", Title: "Brute force", Team: "soc"}}
	if err := s.SyncProvisionedRunbooks(ctx, dir); err != nil {
		t.Fatal(err)
	}
	names := func() []string {
		list, err := s.ListRunbooks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, rb := range list {
			out = append(out, rb.Name)
		}
		return out
	}
	if got := names(); !slices.Equal(got, []string{"brute-force", "disk-full", "manual"}) {
		t.Errorf("after sync: %v", got)
	}
	disk, _ := s.RunbookByName(ctx, "disk-full")
	if !disk.Provisioned || disk.UpdatedBy != "system" {
		t.Errorf("provisioned: %+v", disk)
	}
	if _, err := s.UpdateRunbook(ctx, admin, disk); !errors.Is(err, ErrConflict) {
		t.Errorf("API update of provisioned: %v", err)
	}
	if err := s.DeleteRunbook(ctx, admin, disk.ID); !errors.Is(err, ErrConflict) {
		t.Errorf("API delete of provisioned: %v", err)
	}

	// Unchanged sync writes nothing; a change updates in place; a removal deletes.
	before := auditCount(t, s)
	if err := s.SyncProvisionedRunbooks(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if auditCount(t, s) != before {
		t.Errorf("unchanged sync audited %d entries", auditCount(t, s)-before)
	}
	if err := s.SyncProvisionedRunbooks(ctx, []runbook.Runbook{{Name: "disk-full", Title: "Disk full", Markdown: "v2"}}); err != nil {
		t.Fatal(err)
	}
	if got := names(); !slices.Equal(got, []string{"disk-full", "manual"}) {
		t.Errorf("after second sync: %v", got)
	}
	if got, _ := s.RunbookByName(ctx, "disk-full"); got.ID != disk.ID || got.Markdown != "v2" {
		t.Errorf("updated in place: %+v", got)
	}

	// A name owned by an API runbook, or repeated, refuses the whole sync.
	n := auditCount(t, s)
	if err := s.SyncProvisionedRunbooks(ctx, []runbook.Runbook{{Name: "new"}, {Name: "manual"}}); !errors.Is(err, ErrConflict) {
		t.Errorf("API name clash: %v", err)
	}
	var fe *FieldError
	if err := s.SyncProvisionedRunbooks(ctx, []runbook.Runbook{{Name: "a"}, {Name: "A"}}); !errors.As(err, &fe) || fe.Field != "runbooks[1].name" {
		t.Errorf("repeated name: %v", err)
	}
	if err := s.SyncProvisionedRunbooks(ctx, []runbook.Runbook{{Name: ""}}); !errors.As(err, &fe) || fe.Field != "runbooks[0].name" {
		t.Errorf("empty name: %v", err)
	}
	if got := names(); !slices.Equal(got, []string{"disk-full", "manual"}) || auditCount(t, s) != n {
		t.Errorf("failed syncs changed something: %v", got)
	}

	if err := s.DeleteRunbook(ctx, admin, api.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRunbook(ctx, api.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("get deleted: %v", err)
	}
	if _, err := s.UpdateRunbook(ctx, admin, api); !errors.Is(err, ErrNotFound) {
		t.Errorf("update deleted: %v", err)
	}
	if err := s.DeleteRunbook(ctx, admin, api.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete deleted: %v", err)
	}
}
