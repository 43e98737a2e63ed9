package intake

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
)

func TestParseWebhook(t *testing.T) {
	body := `{"title":"Backup failed","severity":"medium","team":"noc","origin":"natural",
	  "labels":{"job":"nightly"},"annotations":{"runbook_url":"http://r/1"},"source":"bacula",
	  "description":"exit 2","started_at":"2025-06-01T02:00:00Z"}`
	got, err := ParseWebhook([]byte(body), testNow)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"job": "nightly", "alertname": "Backup failed"}
	want := []alert.Alert{{
		Fingerprint: alert.Fingerprint(labels), Status: alert.StatusFiring, Team: "noc", Origin: "natural", Severity: "medium",
		Title: "Backup failed", Description: "exit 2", Labels: labels, Annotations: map[string]string{"runbook_url": "http://r/1"},
		Source: "webhook:bacula", StartedAt: time.Date(2025, 6, 1, 2, 0, 0, 0, time.UTC), LastSeenAt: testNow, Occurrences: 1,
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}

	arr := `[{"title":"a","dedup_key":"k1","status":"resolved"},{"title":"b","labels":{"team":"soc","origin":"human"}}]`
	got, err = ParseWebhook([]byte(arr), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d alerts", len(got))
	}
	if a := got[0]; a.Fingerprint != alert.DedupFingerprint("k1") || a.Status != alert.StatusResolved || a.ResolvedAt == nil || a.Severity != "high" || a.Source != "webhook" {
		t.Errorf("first: %+v", a)
	}
	if b := got[1]; b.Team != "soc" || b.Origin != "human" || !b.StartedAt.Equal(testNow) {
		t.Errorf("second: team/origin from labels: %+v", b)
	}
}

func TestParseWebhookErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"missing title", `{"severity":"high"}`, []string{"title: is required"}},
		{"every problem", `{"title":" ","status":"open","severity":"urgent","team":"ops","origin":"x","started_at":"today"}`, []string{
			"title: is required", `status: must be firing or resolved, got "open"`,
			`severity: unknown severity "urgent" (one of critical, high, medium, low, info)`,
			`team: must be noc or soc, got "ops"`, `origin: must be natural or human, got "x"`,
			`started_at: invalid time "today" (want RFC 3339)`}},
		{"array items named", `[{"title":"ok"},{"title":""},{"title":"x","colour":"red"}]`, []string{
			"[1].title: is required", `[2]: unknown field "colour"`}},
		{"wrong type in array", `[{"title":1}]`, []string{"[0].title: must be a string, got number"}},
		{"empty array", `[]`, []string{"body: the array must hold at least one alert"}},
		{"scalar", `"hello"`, []string{"body: must be a JSON object or an array of objects"}},
		{"bad JSON", `{"title":`, []string{"invalid JSON: unexpected end of input"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as, err := ParseWebhook([]byte(tt.body), testNow)
			var ie *Error
			if !errors.As(err, &ie) || as != nil {
				t.Fatalf("got %v, %v; want an *Error and no alerts", as, err)
			}
			if !reflect.DeepEqual(ie.Problems, tt.want) {
				t.Errorf("problems = %q\nwant       %q", ie.Problems, tt.want)
			}
		})
	}
}

func FuzzParseWebhook(f *testing.F) {
	f.Add([]byte(`{"title":"a"}`))
	f.Add([]byte(`[{"title":"a","dedup_key":"k","status":"resolved"},{"title":"b","labels":{"x":"y"}}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		as, err := ParseWebhook(body, testNow)
		if err != nil {
			var ie *Error
			if !errors.As(err, &ie) || len(ie.Problems) == 0 {
				t.Fatalf("error %v is not an *Error with problems", err)
			}
			return
		}
		for _, a := range as {
			checkAlert(t, "fuzz", a)
		}
	})
}
