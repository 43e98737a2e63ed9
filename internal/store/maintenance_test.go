package store

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/maintenance"
)

func TestWindowsCRUD(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	until := t0.Add(30 * 24 * time.Hour)
	w := maintenance.Window{
		Name:     "patch tuesday",
		Start:    t0.Add(time.Hour).In(time.FixedZone("CET", 3600)),
		Duration: check.Duration(2 * time.Hour),
		Schedule: "0 22 * * 2",
		TimeZone: "Europe/Berlin",
		Until:    &until,
		Checks:   []string{"web", "db"},
		Labels:   map[string]string{"env": "prod"},
		Comment:  "monthly",
	}
	created, err := s.CreateWindow(ctx, admin, w)
	if err != nil {
		t.Fatal(err)
	}
	if created.ID == 0 || created.CreatedBy != "admin" || !created.CreatedAt.Equal(t0) || created.Start.Location() != time.UTC {
		t.Errorf("created %+v", created)
	}
	got, err := s.GetWindow(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, created) {
		t.Errorf("GetWindow =\n%+v\nwant\n%+v", got, created)
	}

	other, err := s.CreateWindow(ctx, Actor{Name: "bob"}, maintenance.Window{Name: "once", Start: t0, Duration: check.Duration(time.Hour), Checks: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	if other.Labels != nil || other.Until != nil {
		t.Errorf("empty fields not nil: %+v", other)
	}
	list, err := s.ListWindows(ctx)
	if err != nil || len(list) != 2 || list[0].ID != other.ID || list[1].ID != created.ID {
		t.Errorf("ListWindows = %+v, %v", list, err)
	}

	upd := created
	upd.Duration = check.Duration(3 * time.Hour)
	upd.Checks = nil
	upd.CreatedBy = "forged"
	res, err := s.UpdateWindow(ctx, Actor{Name: "bob"}, upd)
	if err != nil {
		t.Fatal(err)
	}
	if res.CreatedBy != "admin" || res.Duration.D() != 3*time.Hour || res.Checks != nil {
		t.Errorf("updated %+v", res)
	}
	if g, _ := s.GetWindow(ctx, created.ID); !reflect.DeepEqual(g, res) {
		t.Errorf("after update GetWindow = %+v, want %+v", g, res)
	}
	e, _ := s.ListAudit(ctx, AuditFilter{Action: "maintenance.update"})
	if len(e) != 1 || e[0].Actor != "bob" || !strings.Contains(string(e[0].Before), `"2h0m0s"`) || !strings.Contains(string(e[0].After), `"3h0m0s"`) {
		t.Errorf("update audit %+v", e)
	}
	missing := upd
	missing.ID = 999
	if _, err := s.UpdateWindow(ctx, admin, missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateWindow(999) = %v", err)
	}

	if err := s.DeleteWindow(ctx, admin, created.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetWindow(ctx, created.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetWindow after delete = %v", err)
	}
	if err := s.DeleteWindow(ctx, admin, created.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete = %v", err)
	}
}

func TestWindowRejects(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	early := t0.Add(-time.Hour)
	base := maintenance.Window{Name: "w", Start: t0, Duration: check.Duration(time.Hour)}
	for _, tc := range []struct {
		field string
		edit  func(*maintenance.Window)
	}{
		{"name", func(w *maintenance.Window) { w.Name = " " }},
		{"start", func(w *maintenance.Window) { w.Start = time.Time{} }},
		{"duration", func(w *maintenance.Window) { w.Duration = 0 }},
		{"duration", func(w *maintenance.Window) { w.Duration = check.Duration(time.Millisecond) }},
		{"until", func(w *maintenance.Window) { w.Until = &early }},
	} {
		w := base
		tc.edit(&w)
		_, err := s.CreateWindow(ctx, admin, w)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: %v", tc.field, err)
		}
	}
	if _, err := s.CreateWindow(ctx, Actor{}, base); err == nil {
		t.Error("CreateWindow without actor succeeded")
	}
	if l, _ := s.ListWindows(ctx); len(l) != 0 {
		t.Errorf("rejected windows stored: %+v", l)
	}
	if n := auditCount(t, s); n != 0 {
		t.Errorf("%d audit rows from rejected windows", n)
	}
}
