package intake

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/check"
)

var update = flag.Bool("update", false, "rewrite golden files")

var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func TestAlertmanagerGolden(t *testing.T) {
	body, err := os.ReadFile("testdata/am_with_common_items.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseAlertmanager(body, testNow)
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, '\n')
	const golden = "testdata/am_with_common_items.golden"
	if *update {
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(out) != string(want) {
		t.Errorf("output differs from %s:\n%s", golden, out)
	}
}

func TestParseAlertmanager(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	t.Run("multiple resolved", func(t *testing.T) {
		as, err := ParseAlertmanager(read("am_all_ok_multiple.json"), testNow)
		if err != nil {
			t.Fatal(err)
		}
		if len(as) != 2 {
			t.Fatalf("got %d alerts, want 2", len(as))
		}
		// The sender gives both the same fingerprint; ours follows labels.
		if as[0].Fingerprint == as[1].Fingerprint {
			t.Error("different labels share a fingerprint")
		}
		wantEnd := time.Date(2017, 5, 9, 7, 8, 37, 818000000, time.UTC)
		if as[0].Status != alert.StatusResolved || as[0].ResolvedAt == nil || !as[0].ResolvedAt.Equal(wantEnd) {
			t.Errorf("alert 0: status %s resolved %v, want resolved at %v", as[0].Status, as[0].ResolvedAt, wantEnd)
		}
		if as[0].Severity != "high" || as[1].Severity != "critical" {
			t.Errorf("severities %s, %s; want high (unknown \"severe\"), critical", as[0].Severity, as[1].Severity)
		}
		if as[0].Source != "alertmanager:test_webhook" || as[0].Title != "Disk usage alert on CS30.evilcorp" {
			t.Errorf("source %q title %q", as[0].Source, as[0].Title)
		}
		if as[0].Annotations["generator_url"] != "my.prometheusserver.url" {
			t.Errorf("annotations %v lack generator_url", as[0].Annotations)
		}
	})
	t.Run("alert status from payload, zero endsAt", func(t *testing.T) {
		as, err := ParseAlertmanager(read("am_prom_post_request.json"), testNow)
		if err != nil {
			t.Fatal(err)
		}
		a := as[0]
		if a.Status != alert.StatusFiring || a.ResolvedAt != nil || a.Severity != "medium" {
			t.Errorf("got status %s resolved %v severity %s", a.Status, a.ResolvedAt, a.Severity)
		}
		if want := time.Date(2018, 3, 7, 11, 33, 21, 873077559, time.UTC); !a.StartedAt.Equal(want) {
			t.Errorf("StartedAt %v, want %v", a.StartedAt, want)
		}
	})
	t.Run("missing status", func(t *testing.T) {
		_, err := ParseAlertmanager(read("am_without_mandatory_field.json"), testNow)
		if err == nil || err.Error() != "intake: alerts[0].status: is required (firing or resolved)" {
			t.Errorf("error = %v", err)
		}
	})

	base := func() map[string]any {
		return map[string]any{
			"version": "4", "status": "firing", "receiver": "r",
			"alerts": []any{map[string]any{"status": "firing", "labels": map[string]any{"alertname": "A"}, "startsAt": "2025-06-01T10:00:00Z"}},
		}
	}
	alert0 := func(p map[string]any) map[string]any { return p["alerts"].([]any)[0].(map[string]any) }
	tests := []struct {
		name string
		edit func(map[string]any)
		want string
	}{
		{"wrong version", func(p map[string]any) { p["version"] = "3" }, `version: unsupported version "3" (want "4")`},
		{"missing version", func(p map[string]any) { delete(p, "version") }, `version: is required (Alertmanager webhook version "4")`},
		{"bad top status", func(p map[string]any) { p["status"] = "ok" }, `status: must be firing or resolved, got "ok"`},
		{"no alerts", func(p map[string]any) { p["alerts"] = []any{} }, "alerts: must hold at least one alert"},
		{"bad startsAt", func(p map[string]any) { alert0(p)["startsAt"] = "x" }, `alerts[0].startsAt: invalid time "x"`},
		{"bad endsAt and labels", func(p map[string]any) { alert0(p)["endsAt"] = "yesterday"; alert0(p)["labels"] = map[string]any{} },
			`alerts[0].labels: must not be empty (labels identify the alert); alerts[0].endsAt: invalid time "yesterday"`},
		{"labels wrong type", func(p map[string]any) { alert0(p)["labels"] = map[string]any{"a": 1} }, "alerts.labels: must be a string, got number"},
		{"alerts not a list", func(p map[string]any) { p["alerts"] = "x" }, "alerts: must be an array, got string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base()
			tt.edit(p)
			b, _ := json.Marshal(p)
			_, err := ParseAlertmanager(b, testNow)
			var ie *Error
			if !errors.As(err, &ie) {
				t.Fatalf("error = %v (%T), want *Error", err, err)
			}
			if got := strings.Join(ie.Problems, "; "); !strings.HasPrefix(got, tt.want) {
				t.Errorf("problems = %s\nwant       %s", got, tt.want)
			}
		})
	}
	if _, err := ParseAlertmanager([]byte(`{"version":`), testNow); err == nil || !strings.Contains(err.Error(), "invalid JSON") {
		t.Errorf("truncated body: %v", err)
	}
}

func TestAlertmanagerFingerprintStable(t *testing.T) {
	a := `{"version":"4","status":"firing","alerts":[{"labels":{"a":"1","b":"2"},"annotations":{"summary":"one"}}]}`
	b := `{"version":"4","status":"firing","alerts":[{"labels":{"b":"2","a":"1"},"annotations":{"summary":"two"}}]}`
	x, err1 := ParseAlertmanager([]byte(a), testNow)
	y, err2 := ParseAlertmanager([]byte(b), testNow)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if x[0].Fingerprint != y[0].Fingerprint {
		t.Error("same labels in another order or with other annotations changed the fingerprint")
	}
	if !x[0].StartedAt.Equal(testNow) {
		t.Errorf("missing startsAt: StartedAt %v, want now", x[0].StartedAt)
	}
}

// TestAlertmanagerCorpus replays every webhook body of the shared corpus:
// the well-formed ones parse into sane alerts, the deliberately broken
// ones (without_mandatory_field) are rejected.
func TestAlertmanagerCorpus(t *testing.T) {
	const dir = "../../../shared/data/alertmanager"
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("corpus missing in CI: %v", err)
		}
		t.Skipf("corpus not present: %v", err)
	}
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".json") {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no JSON files in the corpus")
	}
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// Only webhook bodies (version "4") are intake material; the
		// corpus also holds API v2 responses.
		var probe struct {
			Version *string `json:"version"`
		}
		if json.Unmarshal(body, &probe) != nil || probe.Version == nil {
			continue
		}
		as, err := ParseAlertmanager(body, testNow)
		if strings.Contains(filepath.Base(f), "without_mandatory") {
			if err == nil {
				t.Errorf("%s: accepted a payload without status", f)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		for i, a := range as {
			checkAlert(t, fmt.Sprintf("%s: alert %d", f, i), a)
		}
	}
}

// checkAlert asserts the invariants every parsed alert holds.
func checkAlert(t *testing.T, where string, a alert.Alert) {
	t.Helper()
	if len(a.Fingerprint) != 16 {
		t.Errorf("%s: fingerprint %q", where, a.Fingerprint)
	}
	if a.Status != alert.StatusFiring && a.Status != alert.StatusResolved {
		t.Errorf("%s: status %q", where, a.Status)
	}
	if (a.Status == alert.StatusResolved) != (a.ResolvedAt != nil) {
		t.Errorf("%s: status %s with ResolvedAt %v", where, a.Status, a.ResolvedAt)
	}
	if !slices.Contains(check.Severities, a.Severity) {
		t.Errorf("%s: severity %q", where, a.Severity)
	}
	if a.Title == "" || a.StartedAt.IsZero() || a.Source == "" {
		t.Errorf("%s: title %q started %v source %q", where, a.Title, a.StartedAt, a.Source)
	}
}

func FuzzParseAlertmanager(f *testing.F) {
	for _, name := range []string{"am_with_common_items.json", "am_all_ok_multiple.json", "am_prom_post_request.json", "am_without_mandatory_field.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"version":"4","alerts":[{"status":"resolved","labels":{"a":"b"},"endsAt":"0001-01-01T00:00:00Z"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		as, err := ParseAlertmanager(body, testNow)
		if err != nil {
			if as != nil {
				t.Fatal("alerts returned with an error")
			}
			var ie *Error
			if !errors.As(err, &ie) || len(ie.Problems) == 0 {
				t.Fatalf("error %v is not an *Error with problems", err)
			}
			return
		}
		if len(as) == 0 {
			t.Fatal("no alerts and no error")
		}
		for _, a := range as {
			checkAlert(t, "fuzz", a)
			if a.Fingerprint != alert.Fingerprint(a.Labels) {
				t.Fatal("fingerprint does not follow labels")
			}
		}
	})
}

// TestAlertmanagerDeepEqual pins the full mapping of one small payload.
func TestAlertmanagerDeepEqual(t *testing.T) {
	body := `{"version":"4","status":"resolved","receiver":"ops","alerts":[{"status":"resolved",
	  "labels":{"alertname":"Down","severity":"error","team":"soc","origin":"human"},
	  "annotations":{"description":"d"},"startsAt":"2025-06-01T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://p/g"}]}`
	got, err := ParseAlertmanager([]byte(body), testNow)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"alertname": "Down", "severity": "error", "team": "soc", "origin": "human"}
	now := testNow
	want := []alert.Alert{{
		Fingerprint: alert.Fingerprint(labels), Status: alert.StatusResolved, Team: alert.TeamSOC, Origin: alert.OriginHuman,
		Severity: "high", Title: "Down", Description: "d", Labels: labels, Source: "alertmanager:ops",
		StartedAt: time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC), ResolvedAt: &now, LastSeenAt: testNow, Occurrences: 1,
		Annotations: map[string]string{"description": "d", "generator_url": "http://p/g"},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}
