package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
)

func testAlert(name string) alert.Alert {
	labels := map[string]string{"check": name, "kind": "down"}
	return alert.Alert{
		Fingerprint: alert.Fingerprint(labels),
		Team:        alert.TeamNOC,
		Origin:      alert.OriginNatural,
		Severity:    "high",
		Title:       name + " is down",
		Labels:      labels,
		Source:      "check",
		StartedAt:   t0,
	}
}

func TestOpenAlertDedup(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	a := testAlert("web")
	first, created, err := s.OpenAlert(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if !created || first.ID == 0 || first.Status != alert.StatusFiring || first.Occurrences != 1 ||
		!first.StartedAt.Equal(t0) || !first.LastSeenAt.Equal(t0) || first.Labels["check"] != "web" || first.ResolvedAt != nil {
		t.Errorf("first open: created=%v %+v", created, first)
	}

	again := a
	again.LastSeenAt = t0.Add(time.Minute)
	again.Title = "changed"
	second, created, err := s.OpenAlert(ctx, again)
	if err != nil {
		t.Fatal(err)
	}
	if created || second.ID != first.ID || second.Occurrences != 2 || !second.LastSeenAt.Equal(t0.Add(time.Minute)) || second.Title != a.Title {
		t.Errorf("second open: created=%v %+v", created, second)
	}
	// An older observation neither creates nor moves last_seen_at back.
	third, created, err := s.OpenAlert(ctx, a)
	if err != nil || created || third.Occurrences != 3 || !third.LastSeenAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("third open: created=%v %+v %v", created, third, err)
	}

	// A different fingerprint is a different alert.
	if other, created, err := s.OpenAlert(ctx, testAlert("db")); err != nil || !created || other.ID == first.ID {
		t.Errorf("other fingerprint: created=%v %+v %v", created, other, err)
	}

	// Resolve, then open again: a new alert.
	res, err := s.ResolveAlert(ctx, a.Fingerprint, t0.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if res.ID != first.ID || res.Status != alert.StatusResolved || res.ResolvedAt == nil || !res.ResolvedAt.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("resolved = %+v", res)
	}
	if _, err := s.ResolveAlert(ctx, a.Fingerprint, t0.Add(3*time.Minute)); !errors.Is(err, ErrNotFound) {
		t.Errorf("second resolve = %v, want ErrNotFound", err)
	}
	a.StartedAt = t0.Add(5 * time.Minute)
	reopened, created, err := s.OpenAlert(ctx, a)
	if err != nil || !created || reopened.ID == first.ID || reopened.Occurrences != 1 {
		t.Errorf("reopen: created=%v %+v %v", created, reopened, err)
	}
	old, err := s.GetAlert(ctx, first.ID)
	if err != nil || old.Status != alert.StatusResolved || old.Occurrences != 3 {
		t.Errorf("old alert = %+v, %v", old, err)
	}
	if _, err := s.GetAlert(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetAlert(999) = %v", err)
	}
}

func TestOpenAlertConcurrent(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const n = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	createdCount := 0
	ids := map[int64]bool{}
	for range n {
		wg.Go(func() {
			a, created, err := s.OpenAlert(ctx, testAlert("web"))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			ids[a.ID] = true
			if created {
				createdCount++
			}
		})
	}
	wg.Wait()
	if createdCount != 1 || len(ids) != 1 {
		t.Errorf("created %d times, %d distinct ids; want 1 and 1", createdCount, len(ids))
	}
	firing, err := s.ListAlerts(ctx, AlertFilter{Status: alert.StatusFiring})
	if err != nil {
		t.Fatal(err)
	}
	if len(firing) != 1 || firing[0].Occurrences != n {
		t.Errorf("firing = %+v, want one alert with %d occurrences", firing, n)
	}
}

func TestOpenAlertRejects(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for _, tc := range []struct {
		field string
		edit  func(*alert.Alert)
	}{
		{"fingerprint", func(a *alert.Alert) { a.Fingerprint, a.Labels = "", nil }},
		{"team", func(a *alert.Alert) { a.Team = "ops" }},
		{"origin", func(a *alert.Alert) { a.Origin = "" }},
		{"severity", func(a *alert.Alert) { a.Severity = "" }},
		{"title", func(a *alert.Alert) { a.Title = " " }},
		{"started_at", func(a *alert.Alert) { a.StartedAt = time.Time{} }},
	} {
		a := testAlert("web")
		tc.edit(&a)
		_, _, err := s.OpenAlert(ctx, a)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: err = %v", tc.field, err)
		}
	}
	if n, _ := s.CountAlerts(ctx, AlertFilter{}); n != 0 {
		t.Errorf("%d alerts stored from bad input", n)
	}
	// Without a fingerprint, it is derived from the labels.
	a := testAlert("web")
	a.Fingerprint = ""
	got, _, err := s.OpenAlert(ctx, a)
	if err != nil || got.Fingerprint != alert.Fingerprint(a.Labels) {
		t.Errorf("derived fingerprint: %+v, %v", got, err)
	}
	if _, err := s.ResolveAlert(ctx, got.Fingerprint, time.Time{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("ResolveAlert(zero time) = %v", err)
	}
}

func TestListAndCountAlerts(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	var all []alert.Alert
	for i := range 6 {
		a := testAlert(fmt.Sprintf("c%d", i))
		if i%2 == 1 {
			a.Team, a.Origin, a.Source = alert.TeamSOC, alert.OriginHuman, "sigma"
		}
		if i >= 4 {
			a.Severity = "critical"
		}
		got, _, err := s.OpenAlert(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, got)
	}
	if _, err := s.ResolveAlert(ctx, all[0].Fingerprint, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    AlertFilter
		want []int // indexes into all, newest first
	}{
		{"all", AlertFilter{}, []int{5, 4, 3, 2, 1, 0}},
		{"firing", AlertFilter{Status: "firing"}, []int{5, 4, 3, 2, 1}},
		{"resolved", AlertFilter{Status: "resolved"}, []int{0}},
		{"soc", AlertFilter{Team: "soc"}, []int{5, 3, 1}},
		{"critical", AlertFilter{Severity: "critical"}, []int{5, 4}},
		{"source", AlertFilter{Source: "check"}, []int{4, 2, 0}},
		{"noc firing", AlertFilter{Team: "noc", Status: "firing"}, []int{4, 2}},
		{"limit", AlertFilter{Limit: 2}, []int{5, 4}},
		{"before", AlertFilter{BeforeID: all[3].ID, Limit: 2}, []int{2, 1}},
		{"none", AlertFilter{Team: "nobody"}, nil},
	} {
		got, err := s.ListAlerts(ctx, tc.f)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var gotIDs, wantIDs []int64
		for _, a := range got {
			gotIDs = append(gotIDs, a.ID)
		}
		for _, i := range tc.want {
			wantIDs = append(wantIDs, all[i].ID)
		}
		if fmt.Sprint(gotIDs) != fmt.Sprint(wantIDs) {
			t.Errorf("%s: ids %v, want %v", tc.name, gotIDs, wantIDs)
		}
		count := tc.f
		count.Limit = 0
		n, err := s.CountAlerts(ctx, count)
		if err != nil {
			t.Fatal(err)
		}
		if tc.f.Limit == 0 && n != len(tc.want) {
			t.Errorf("%s: CountAlerts = %d, want %d", tc.name, n, len(tc.want))
		}
	}
}
