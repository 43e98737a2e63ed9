package store

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/check"
)

func httpSpec(name string) check.Spec {
	s := check.Spec{Name: name, Type: check.TypeHTTP, Target: "http://127.0.0.1:8080/health",
		Labels: map[string]string{"env": "prod"}, DependsOn: []string{"gw"}}
	s.Normalize()
	return s
}

func TestChecksCRUD(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	web := httpSpec("web")
	web.Provisioned = true // ignored: API checks are never provisioned
	if err := s.CreateCheck(ctx, admin, web); err != nil {
		t.Fatal(err)
	}
	web.Provisioned = false
	got, err := s.GetCheck(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, web) {
		t.Errorf("GetCheck = %+v, want %+v", got, web)
	}
	if err := s.CreateCheck(ctx, admin, httpSpec("web")); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate CreateCheck = %v", err)
	}
	bad := httpSpec("bad")
	bad.Target = "ftp://x"
	err = s.CreateCheck(ctx, admin, bad)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "target" {
		t.Errorf("invalid CreateCheck = %v, want FieldError on target", err)
	}

	web.Interval = check.Duration(30 * time.Second)
	if err := s.UpdateCheck(ctx, admin, web); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetCheck(ctx, "web"); got.Interval.D() != 30*time.Second {
		t.Errorf("interval after update = %v", got.Interval)
	}
	if err := s.UpdateCheck(ctx, admin, httpSpec("nope")); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateCheck(nope) = %v", err)
	}
	e, _ := s.ListAudit(ctx, AuditFilter{Target: "check:web"})
	if len(e) != 2 || e[0].Action != "check.update" || !strings.Contains(string(e[0].Before), `"1m0s"`) || !strings.Contains(string(e[0].After), `"30s"`) {
		t.Errorf("check audit = %+v", e)
	}

	if err := s.CreateCheck(ctx, admin, httpSpec("api")); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListChecks(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "api" || list[1].Name != "web" {
		t.Errorf("ListChecks = %+v, %v", list, err)
	}

	if err := s.SaveStatuses(ctx, []SavedStatus{{Check: "web", State: "down", Since: t0}}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCheck(ctx, admin, "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetCheck(ctx, "web"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetCheck after delete = %v", err)
	}
	if st, _ := s.LoadStatuses(ctx); len(st) != 0 {
		t.Errorf("status of deleted check kept: %+v", st)
	}
	if err := s.DeleteCheck(ctx, admin, "web"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteCheck = %v", err)
	}
	if e, _ := s.ListAudit(ctx, AuditFilter{Action: "check.delete"}); len(e) != 1 || e[0].After != nil {
		t.Errorf("delete audit = %+v", e)
	}
}

func TestPushCheckToken(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	hb := check.Spec{Name: "backup", Type: check.TypePush, Push: &check.PushSpec{Token: "s3cret-heartbeat"}}
	hb.Normalize()
	if err := s.CreateCheck(ctx, admin, hb); err != nil {
		t.Fatal(err)
	}
	name, err := s.PushCheckByTokenHash(ctx, auth.HashToken("s3cret-heartbeat"))
	if err != nil || name != "backup" {
		t.Fatalf("PushCheckByTokenHash = %q, %v", name, err)
	}
	// The secret is in neither the stored spec nor the audit log.
	var js string
	if err := s.r.QueryRow(`SELECT spec FROM checks WHERE name = 'backup'`).Scan(&js); err != nil {
		t.Fatal(err)
	}
	e, _ := s.ListAudit(ctx, AuditFilter{})
	if strings.Contains(js, "s3cret") || strings.Contains(string(e[0].After), "s3cret") {
		t.Errorf("push secret stored in clear: %s / %s", js, e[0].After)
	}

	// A new token on update replaces the old one.
	hb.Push.Token = "rotated"
	if err := s.UpdateCheck(ctx, admin, hb); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PushCheckByTokenHash(ctx, auth.HashToken("s3cret-heartbeat")); !errors.Is(err, ErrNotFound) {
		t.Errorf("old token still maps: %v", err)
	}
	if name, _ := s.PushCheckByTokenHash(ctx, auth.HashToken("rotated")); name != "backup" {
		t.Errorf("rotated token maps to %q", name)
	}
	// Another check may not take the same token; nothing is created.
	dup := check.Spec{Name: "dup", Type: check.TypePush, Push: &check.PushSpec{Token: "rotated"}}
	dup.Normalize()
	if err := s.CreateCheck(ctx, admin, dup); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate push token = %v", err)
	}
	if _, err := s.GetCheck(ctx, "dup"); !errors.Is(err, ErrNotFound) {
		t.Errorf("check with conflicting token was stored: %v", err)
	}
	if err := s.DeleteCheck(ctx, admin, "backup"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PushCheckByTokenHash(ctx, auth.HashToken("rotated")); !errors.Is(err, ErrNotFound) {
		t.Errorf("token of deleted check still maps: %v", err)
	}
}

func TestPushTokens(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	h1, h2 := hashOf("one"), hashOf("two")
	if err := s.SetPushToken(ctx, "provisioned-cron", h1); err != nil {
		t.Fatal(err)
	}
	if name, err := s.PushCheckByTokenHash(ctx, h1); err != nil || name != "provisioned-cron" {
		t.Errorf("lookup = %q, %v", name, err)
	}
	if err := s.SetPushToken(ctx, "provisioned-cron", h2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PushCheckByTokenHash(ctx, h1); !errors.Is(err, ErrNotFound) {
		t.Errorf("replaced hash still maps: %v", err)
	}
	if err := s.SetPushToken(ctx, "other", h2); !errors.Is(err, ErrConflict) {
		t.Errorf("hash reuse = %v, want ErrConflict", err)
	}
	for _, tc := range []struct{ check, hash, field string }{
		{"", h1, "check"},
		{"x", "not-hex", "token_hash"},
	} {
		var fe *FieldError
		if err := s.SetPushToken(ctx, tc.check, tc.hash); !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("SetPushToken(%q, %q) = %v", tc.check, tc.hash, err)
		}
	}
	if err := s.DeletePushToken(ctx, "provisioned-cron"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePushToken(ctx, "provisioned-cron"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeletePushToken = %v", err)
	}
	if _, err := s.PushCheckByTokenHash(ctx, h2); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted token maps: %v", err)
	}
}
