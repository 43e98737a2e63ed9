package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/incident"
	"github.com/nocsoc/nocsoc/internal/notify"
)

func deliveryFor(incidentID int64, status string) notify.Delivery {
	return notify.Delivery{IncidentID: incidentID, Channel: "ops", Event: "triggered", Status: status, LatencyMS: 12.5, Time: t0}
}

func TestIncidentCreateUpdateGet(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	in := testIncident("db down")
	in.Joint, in.Owner, in.Tier, in.PolicyID, in.Service, in.RunbookID = true, "alice", 1, 7, "db", 3
	next := t0.Add(5 * time.Minute)
	in.NextEscalationAt = &next
	inc := mustIncident(t, s, in)
	if inc.ID == 0 || inc.Status != incident.StatusTriggered || inc.AlertCount != 0 {
		t.Fatalf("created: %+v", inc)
	}
	got, err := s.GetIncident(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Joint || got.Owner != "alice" || got.Tier != 1 || got.PolicyID != 7 || got.Labels["service"] != "web" ||
		!slices.Equal(got.Channels, []string{"ops"}) || got.NextEscalationAt == nil || !got.NextEscalationAt.Equal(next) ||
		got.GroupKey != "g:db down" || got.RunbookID != 3 {
		t.Errorf("got %+v", got)
	}

	ack := t0.Add(time.Minute)
	got.Status, got.AcknowledgedAt, got.NextEscalationAt, got.Escalations, got.Handoffs = incident.StatusAcknowledged, &ack, nil, 2, 1
	got.AlertCount = 99 // ignored: follows the alerts
	batch(t, s, func(tx *Tx) error { return tx.UpdateIncident(got) })
	got2, _ := s.GetIncident(ctx, inc.ID)
	if got2.Status != incident.StatusAcknowledged || got2.AcknowledgedAt == nil || got2.NextEscalationAt != nil ||
		got2.Escalations != 2 || got2.Handoffs != 1 || got2.AlertCount != 0 {
		t.Errorf("after update: %+v", got2)
	}

	if _, err := s.GetIncident(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetIncident(999) = %v", err)
	}
	bad := []struct {
		field string
		mod   func(*incident.Incident)
	}{
		{"title", func(i *incident.Incident) { i.Title = " " }},
		{"team", func(i *incident.Incident) { i.Team = "ops" }},
		{"origin", func(i *incident.Incident) { i.Origin = "" }},
		{"severity", func(i *incident.Incident) { i.Severity = "" }},
		{"status", func(i *incident.Incident) { i.Status = "done" }},
		{"triggered_at", func(i *incident.Incident) { i.TriggeredAt = time.Time{} }},
	}
	for _, tc := range bad {
		inc := testIncident("x")
		tc.mod(&inc)
		var fe *FieldError
		err := s.Batch(ctx, func(tx *Tx) error { _, err := tx.CreateIncident(inc); return err })
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: err = %v", tc.field, err)
		}
	}
}

func TestListIncidentsAndMetrics(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	mk := func(title, team, sev, status string, joint bool, trig time.Duration, ack, res *time.Duration) incident.Incident {
		in := testIncident(title)
		in.Team, in.Severity, in.Status, in.Joint, in.TriggeredAt = team, sev, status, joint, t0.Add(trig)
		if ack != nil {
			v := t0.Add(*ack)
			in.AcknowledgedAt = &v
		}
		if res != nil {
			v := t0.Add(*res)
			in.ResolvedAt = &v
		}
		return mustIncident(t, s, in)
	}
	d := func(v time.Duration) *time.Duration { return &v }
	nocOld := mk("noc old", alert.TeamNOC, "high", incident.StatusResolved, false, -48*time.Hour, d(-47*time.Hour), d(-2*time.Hour))
	socOpen := mk("soc open", alert.TeamSOC, "critical", incident.StatusTriggered, false, 0, nil, nil)
	joint := mk("joint", alert.TeamSOC, "high", incident.StatusInvestigating, true, time.Hour, d(2*time.Hour), nil)
	closed := mk("noc closed", alert.TeamNOC, "low", incident.StatusClosed, false, -72*time.Hour, nil, d(-70*time.Hour))

	ids := func(incs []incident.Incident) []int64 {
		var out []int64
		for _, i := range incs {
			out = append(out, i.ID)
		}
		return out
	}
	yes, no := true, false
	cases := []struct {
		name string
		f    IncidentFilter
		want []int64
	}{
		{"all newest first", IncidentFilter{}, []int64{closed.ID, joint.ID, socOpen.ID, nocOld.ID}},
		{"noc queue includes joint", IncidentFilter{Team: alert.TeamNOC}, []int64{closed.ID, joint.ID, nocOld.ID}},
		{"statuses", IncidentFilter{Statuses: []string{incident.StatusTriggered, incident.StatusInvestigating}}, []int64{joint.ID, socOpen.ID}},
		{"severity", IncidentFilter{Severity: "critical"}, []int64{socOpen.ID}},
		{"open", IncidentFilter{Open: &yes}, []int64{joint.ID, socOpen.ID}},
		{"finished", IncidentFilter{Open: &no}, []int64{closed.ID, nocOld.ID}},
		{"page", IncidentFilter{Limit: 2, BeforeID: joint.ID}, []int64{socOpen.ID, nocOld.ID}},
	}
	for _, tc := range cases {
		got, err := s.ListIncidents(ctx, tc.f)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !slices.Equal(ids(got), tc.want) {
			t.Errorf("%s: ids %v, want %v", tc.name, ids(got), tc.want)
		}
	}
	var fe *FieldError
	if _, err := s.ListIncidents(ctx, IncidentFilter{Statuses: []string{"triggered", "nope"}}); !errors.As(err, &fe) || fe.Field != "statuses[1]" {
		t.Errorf("bad status filter: %v", err)
	}

	open, err := s.OpenIncidents(ctx)
	if err != nil || !slices.Equal(ids(open), []int64{socOpen.ID, joint.ID}) {
		t.Errorf("OpenIncidents = %v, %v", ids(open), err)
	}

	// The last 24 hours: nocOld resolved in it, socOpen and joint triggered in it.
	m, err := s.IncidentsForMetrics(ctx, t0.Add(-24*time.Hour), t0.Add(24*time.Hour))
	if err != nil || !slices.Equal(ids(m), []int64{nocOld.ID, socOpen.ID, joint.ID}) {
		t.Errorf("IncidentsForMetrics = %v, %v", ids(m), err)
	}
	// [from, to): an incident acknowledged exactly at to is out.
	m, _ = s.IncidentsForMetrics(ctx, t0.Add(-47*time.Hour-time.Minute), t0.Add(-47*time.Hour))
	if len(m) != 0 {
		t.Errorf("exclusive end: %v", ids(m))
	}
	m, _ = s.IncidentsForMetrics(ctx, t0.Add(-47*time.Hour), t0.Add(-46*time.Hour))
	if !slices.Equal(ids(m), []int64{nocOld.ID}) {
		t.Errorf("acknowledged in range: %v", ids(m))
	}
	if _, err := s.IncidentsForMetrics(ctx, t0, t0); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty range: %v", err)
	}
}

func TestAlertVolumeAndIncidentAlerts(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	i1 := mustIncident(t, s, testIncident("one"))
	i2 := mustIncident(t, s, testIncident("two"))
	batch(t, s, func(tx *Tx) error {
		for i := range 5 {
			a := testAlert(fmt.Sprint("n", i))
			a.IncidentID = []int64{i1.ID, i2.ID}[i%2]
			if _, _, err := tx.UpsertAlert(a); err != nil {
				return err
			}
		}
		s1 := testAlert("s")
		s1.Team, s1.Origin, s1.Severity, s1.Integration = alert.TeamSOC, alert.OriginHuman, "critical", "am"
		if _, _, err := tx.UpsertAlert(s1); err != nil {
			return err
		}
		old := testAlert("old")
		old.StartedAt = t0.Add(-48 * time.Hour)
		_, _, err := tx.UpsertAlert(old)
		return err
	})
	rows, err := s.AlertVolume(ctx, t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []AlertVolumeRow{{alert.TeamNOC, "high", 5, 2}, {alert.TeamSOC, "critical", 1, 0}}
	if !slices.Equal(rows, want) {
		t.Errorf("AlertVolume = %+v, want %+v", rows, want)
	}
	if n, _ := s.CountAlerts(ctx, AlertFilter{Integration: "am"}); n != 1 {
		t.Errorf("integration filter: %d", n)
	}

	page, total, err := s.IncidentAlerts(ctx, i1.ID, 2, 0)
	if err != nil || total != 3 || len(page) != 2 || page[0].ID < page[1].ID {
		t.Fatalf("first page: %d alerts, total %d, %v", len(page), total, err)
	}
	rest, _, err := s.IncidentAlerts(ctx, i1.ID, 2, page[1].ID)
	if err != nil || len(rest) != 1 || rest[0].ID >= page[1].ID {
		t.Errorf("second page: %+v %v", rest, err)
	}
	if list, _ := s.ListAlerts(ctx, AlertFilter{IncidentID: i1.ID}); len(list) != 3 {
		t.Errorf("ListAlerts by incident: %d", len(list))
	}
	if _, _, err := s.IncidentAlerts(ctx, 999, 10, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown incident: %v", err)
	}
	firing, err := s.FiringAlerts(ctx)
	if err != nil || len(firing) != 7 {
		t.Errorf("FiringAlerts: %d %v", len(firing), err)
	}
}

func TestTimelineAppendOnly(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	inc := mustIncident(t, s, testIncident("web"))
	var entries []incident.TimelineEntry
	batch(t, s, func(tx *Tx) error {
		for i, k := range []string{incident.KindCreated, incident.KindAlertAttached, incident.KindNote} {
			e, err := tx.AppendTimeline(incident.TimelineEntry{IncidentID: inc.ID, Time: t0.Add(time.Duration(i) * time.Second),
				Actor: "alice", Kind: k, Message: k, Data: map[string]any{"n": i}})
			if err != nil {
				return err
			}
			entries = append(entries, e)
		}
		return nil
	})
	got, err := s.Timeline(ctx, inc.ID, 0, 0)
	if err != nil || len(got) != 3 || got[0].Kind != incident.KindCreated || got[2].Data["n"] != float64(2) || got[1].Actor != "alice" {
		t.Fatalf("Timeline = %+v, %v", got, err)
	}
	if after, _ := s.Timeline(ctx, inc.ID, 1, entries[0].ID); len(after) != 1 || after[0].ID != entries[1].ID {
		t.Errorf("after first: %+v", after)
	}
	for _, q := range []string{`UPDATE timeline SET message = 'x'`, `DELETE FROM timeline`} {
		if _, err := s.w.Exec(q); err == nil {
			t.Errorf("%s succeeded on the append-only timeline", q)
		}
	}
	if got, _ := s.Timeline(ctx, inc.ID, 0, 0); len(got) != 3 || got[0].Message != incident.KindCreated {
		t.Errorf("timeline changed: %+v", got)
	}
	var fe *FieldError
	err = s.Batch(ctx, func(tx *Tx) error {
		_, err := tx.AppendTimeline(incident.TimelineEntry{IncidentID: inc.ID, Kind: incident.KindNote})
		return err
	})
	if !errors.As(err, &fe) || fe.Field != "actor" {
		t.Errorf("no actor: %v", err)
	}
}

func TestTasksObservablesPostmortem(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	inc := mustIncident(t, s, testIncident("web"))
	var task incident.Task
	batch(t, s, func(tx *Tx) error {
		var err error
		if _, err = tx.AddTask(incident.Task{IncidentID: inc.ID, Title: "second", Position: 2}); err != nil {
			return err
		}
		task, err = tx.AddTask(incident.Task{IncidentID: inc.ID, Title: "check power", Position: 1, FromRunbook: true})
		return err
	})
	done := t0.Add(time.Minute)
	task.Done, task.DoneBy, task.DoneAt = true, "bob", &done
	batch(t, s, func(tx *Tx) error { return tx.UpdateTask(task) })
	tasks, err := s.Tasks(ctx, inc.ID)
	if err != nil || len(tasks) != 2 || tasks[0].ID != task.ID || !tasks[0].Done || tasks[0].DoneBy != "bob" || !tasks[0].FromRunbook {
		t.Errorf("Tasks = %+v, %v", tasks, err)
	}
	if got, err := s.GetTask(ctx, task.ID); err != nil || got.DoneAt == nil || !got.DoneAt.Equal(done) {
		t.Errorf("GetTask = %+v, %v", got, err)
	}
	if _, err := s.GetTask(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetTask(999) = %v", err)
	}
	task.DoneAt = nil
	if err := s.Batch(ctx, func(tx *Tx) error { return tx.UpdateTask(task) }); !errors.Is(err, ErrInvalid) {
		t.Errorf("done without done_at: %v", err)
	}

	var obs incident.Observable
	batch(t, s, func(tx *Tx) error {
		var err error
		obs, err = tx.AddObservable(incident.Observable{IncidentID: inc.ID, Type: "ip", Value: "203.0.113.7", AddedBy: "bob"})
		return err
	})
	if obs.ID == 0 || obs.TLP != "amber" || !obs.AddedAt.Equal(t0) {
		t.Errorf("observable: %+v", obs)
	}
	if err := s.Batch(ctx, func(tx *Tx) error {
		_, err := tx.AddObservable(incident.Observable{IncidentID: inc.ID, Type: "ip", Value: "203.0.113.7", TLP: "red"})
		return err
	}); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate observable: %v", err)
	}
	for _, o := range []incident.Observable{
		{IncidentID: inc.ID, Type: "mac", Value: "x"},
		{IncidentID: inc.ID, Type: "ip", Value: " "},
		{IncidentID: inc.ID, Type: "ip", Value: "1.2.3.4", TLP: "white"},
	} {
		if err := s.Batch(ctx, func(tx *Tx) error { _, err := tx.AddObservable(o); return err }); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad observable %+v: %v", o, err)
		}
	}
	if list, err := s.Observables(ctx, inc.ID); err != nil || len(list) != 1 || list[0].Value != "203.0.113.7" {
		t.Errorf("Observables = %+v, %v", list, err)
	}

	if _, err := s.Postmortem(ctx, inc.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Postmortem before save: %v", err)
	}
	pm := incident.Postmortem{IncidentID: inc.ID, Category: "power", Summary: "UPS failed",
		ContributingFactors: []string{"no battery test"}, ActionItems: []incident.ActionItem{{Title: "test UPS", Owner: "bob"}}, Author: "alice"}
	batch(t, s, func(tx *Tx) error { return tx.SavePostmortem(pm) })
	pm.Category, pm.Summary = "change", "bad change"
	batch(t, s, func(tx *Tx) error { return tx.SavePostmortem(pm) })
	got, err := s.Postmortem(ctx, inc.ID)
	if err != nil || got.Category != "change" || got.Summary != "bad change" || len(got.ActionItems) != 1 ||
		got.ActionItems[0].Owner != "bob" || got.ContributingFactors[0] != "no battery test" || !got.UpdatedAt.Equal(t0) {
		t.Errorf("Postmortem = %+v, %v", got, err)
	}
	pm.Category = "gremlins"
	var fe *FieldError
	if err := s.Batch(ctx, func(tx *Tx) error { return tx.SavePostmortem(pm) }); !errors.As(err, &fe) || fe.Field != "category" {
		t.Errorf("bad category: %v", err)
	}
}

func TestDeliveries(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	batch(t, s, func(tx *Tx) error {
		for _, st := range []string{"failed", "failed", "dead", "sent"} {
			if _, err := tx.RecordDelivery(deliveryFor(1, st)); err != nil {
				return err
			}
		}
		d := deliveryFor(2, "sent")
		d.Channel = "mail"
		_, err := tx.RecordDelivery(d)
		return err
	})
	all, err := s.ListDeliveries(ctx, DeliveryFilter{})
	if err != nil || len(all) != 5 || all[0].Channel != "mail" || all[0].LatencyMS != 12.5 || all[0].Attempt != 1 {
		t.Fatalf("ListDeliveries = %+v, %v", all, err)
	}
	cases := []struct {
		f    DeliveryFilter
		want int
	}{
		{DeliveryFilter{IncidentID: 1}, 4},
		{DeliveryFilter{Status: "failed"}, 2},
		{DeliveryFilter{Channel: "mail"}, 1},
		{DeliveryFilter{BeforeID: all[1].ID}, 3},
		{DeliveryFilter{Limit: 2}, 2},
	}
	for _, tc := range cases {
		if got, _ := s.ListDeliveries(ctx, tc.f); len(got) != tc.want {
			t.Errorf("%+v: %d, want %d", tc.f, len(got), tc.want)
		}
	}
	if dead, err := s.DeadLetters(ctx, 10); err != nil || len(dead) != 1 || dead[0].Status != "dead" {
		t.Errorf("DeadLetters = %+v, %v", dead, err)
	}
	if err := s.Batch(ctx, func(tx *Tx) error { _, err := tx.RecordDelivery(deliveryFor(1, "lost")); return err }); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad status: %v", err)
	}
}
