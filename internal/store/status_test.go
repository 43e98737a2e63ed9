package store

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestSaveAndLoadStatuses(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	first := []SavedStatus{
		{Check: "web", State: "down", RootCause: "", Since: t0, Data: json.RawMessage(`{"fails":3}`)},
		{Check: "db", State: "up", Since: t0.Add(-time.Hour)},
		{Check: "app", State: "unreachable", RootCause: "gw", Since: t0},
	}
	if err := s.SaveStatuses(ctx, first); err != nil {
		t.Fatal(err)
	}
	// Upsert: web changes, a new check appears, others stay.
	if err := s.SaveStatuses(ctx, []SavedStatus{
		{Check: "web", State: "up", Since: t0.Add(time.Minute)},
		{Check: "mail", State: "unknown", Since: t0},
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadStatuses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []SavedStatus{
		{Check: "app", State: "unreachable", RootCause: "gw", Since: t0},
		{Check: "db", State: "up", Since: t0.Add(-time.Hour)},
		{Check: "mail", State: "unknown", Since: t0},
		{Check: "web", State: "up", Since: t0.Add(time.Minute)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LoadStatuses =\n%+v\nwant\n%+v", got, want)
	}

	// A bad entry rejects the batch and names its position.
	err = s.SaveStatuses(ctx, []SavedStatus{
		{Check: "db", State: "down", Since: t0},
		{Check: "web", State: "sideways", Since: t0},
	})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "[1].state" {
		t.Fatalf("bad batch = %v", err)
	}
	for _, bad := range []SavedStatus{
		{State: "up", Since: t0},
		{Check: "x", State: "up"},
		{Check: "x", State: "up", Since: t0, Data: json.RawMessage(`{`)},
	} {
		if err := s.SaveStatuses(ctx, []SavedStatus{bad}); !errors.Is(err, ErrInvalid) {
			t.Errorf("SaveStatuses(%+v) = %v", bad, err)
		}
	}
	if again, _ := s.LoadStatuses(ctx); !reflect.DeepEqual(again, want) {
		t.Errorf("rejected batch changed statuses: %+v", again)
	}
	if err := s.SaveStatuses(ctx, nil); err != nil {
		t.Errorf("empty batch: %v", err)
	}
}
