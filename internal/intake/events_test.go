package intake

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
)

// Shapes follow the PagerDuty Events API v2 documentation examples.
const pdTrigger = `{
  "payload": {
    "summary": "DISK at 99% on machine prod-datapipe03.example.com",
    "timestamp": "2015-07-17T08:42:58.315+0000",
    "severity": "critical",
    "source": "prod-datapipe03.example.com",
    "component": "mysql",
    "group": "prod-datapipe",
    "class": "disk",
    "custom_details": {"free space": "1%", "ping time": "1500ms", "load avg": 0.75}
  },
  "routing_key": "samplekeyhere",
  "dedup_key": "samplekeyhere",
  "images": [{"src": "https://www.pagerduty.com/wp-content/uploads/2016/05/pagerduty-logo-green.png", "href": "https://example.com/", "alt": "Example text"}],
  "links": [{"href": "https://example.com/", "text": "Link text"}],
  "event_action": "trigger",
  "client": "Sample Monitoring Service",
  "client_url": "https://monitoring.example.com"
}`

func TestParseEventsTrigger(t *testing.T) {
	// PagerDuty's own example uses "+0000", which is not RFC 3339; the
	// timestamp is the only invalid field.
	_, err := ParseEvents([]byte(pdTrigger), testNow)
	if err == nil || err.Error() != `intake: payload.timestamp: invalid time "2015-07-17T08:42:58.315+0000" (want ISO 8601 / RFC 3339)` {
		t.Fatalf("error = %v", err)
	}
	body := strings.Replace(pdTrigger, "+0000", "+00:00", 1)
	ev, err := ParseEvents([]byte(body), testNow)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"source": "prod-datapipe03.example.com", "severity": "critical", "component": "mysql", "group": "prod-datapipe", "class": "disk"}
	want := Event{RoutingKey: "samplekeyhere", Action: ActionTrigger, DedupKey: "samplekeyhere", Alert: alert.Alert{
		Fingerprint: alert.DedupFingerprint("samplekeyhere"), DedupKey: "samplekeyhere", Status: alert.StatusFiring,
		Severity: "critical", Title: "DISK at 99% on machine prod-datapipe03.example.com", Labels: labels,
		Source: "events:prod-datapipe03.example.com", StartedAt: time.Date(2015, 7, 17, 8, 42, 58, 315000000, time.UTC),
		LastSeenAt: testNow, Occurrences: 1,
		Annotations: map[string]string{
			"custom_details": `{"free space": "1%", "ping time": "1500ms", "load avg": 0.75}`,
			"client":         "Sample Monitoring Service", "client_url": "https://monitoring.example.com",
			"link.0": "https://example.com/", "link.0.text": "Link text",
			"image.0": "https://www.pagerduty.com/wp-content/uploads/2016/05/pagerduty-logo-green.png",
		},
	}}
	ev.Alert.StartedAt = ev.Alert.StartedAt.UTC()
	if !reflect.DeepEqual(ev, want) {
		t.Errorf("got  %+v\nwant %+v", ev, want)
	}
}

func TestParseEventsAckResolve(t *testing.T) {
	for _, action := range []string{ActionAcknowledge, ActionResolve} {
		ev, err := ParseEvents([]byte(`{"routing_key":"k","dedup_key":"samplekeyhere","event_action":"`+action+`"}`), testNow)
		if err != nil {
			t.Fatalf("%s: %v", action, err)
		}
		a := ev.Alert
		if ev.Action != action || a.Fingerprint != alert.DedupFingerprint("samplekeyhere") || a.DedupKey != "samplekeyhere" {
			t.Errorf("%s: %+v", action, ev)
		}
		switch action {
		case ActionAcknowledge:
			if a.Status != alert.StatusFiring || a.AcknowledgedAt == nil || !a.AcknowledgedAt.Equal(testNow) {
				t.Errorf("ack: %+v", a)
			}
		case ActionResolve:
			if a.Status != alert.StatusResolved || a.ResolvedAt == nil {
				t.Errorf("resolve: %+v", a)
			}
		}
	}
}

func TestParseEventsGeneratedDedupKey(t *testing.T) {
	body := []byte(`{"routing_key":"k","event_action":"trigger","payload":{"summary":"s","source":"h","severity":"warning"}}`)
	a, err := ParseEvents(body, testNow)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ParseEvents(body, testNow.Add(time.Minute))
	if !a.DedupGenerated || a.DedupKey == "" || a.DedupKey != b.DedupKey {
		t.Errorf("generated keys %q, %q: a retried delivery must get the same key", a.DedupKey, b.DedupKey)
	}
	other, _ := ParseEvents([]byte(strings.Replace(string(body), `"s"`, `"t"`, 1)), testNow)
	if other.DedupKey == a.DedupKey {
		t.Error("different events got the same generated key")
	}
	if a.Alert.Severity != "medium" || !a.Alert.StartedAt.Equal(testNow) {
		t.Errorf("severity %s started %v", a.Alert.Severity, a.Alert.StartedAt)
	}
}

func TestParseEventsErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"empty object", `{}`, []string{"routing_key: is required", "event_action: is required (trigger, acknowledge or resolve)"}},
		{"trigger without payload", `{"routing_key":"k","event_action":"trigger"}`, []string{"payload: is required for trigger"}},
		{"empty payload lists every problem", `{"routing_key":"k","event_action":"trigger","payload":{}}`,
			[]string{"payload.summary: is required", "payload.source: is required", "payload.severity: is required (critical, error, warning or info)"}},
		{"bad values", `{"routing_key":"k","event_action":"trigger","payload":{"summary":"s","source":"h","severity":"high","timestamp":"now"},"links":[{"text":"x"}],"images":[{}]}`,
			[]string{`payload.severity: must be critical, error, warning or info, got "high"`, `payload.timestamp: invalid time "now" (want ISO 8601 / RFC 3339)`, "links[0].href: is required", "images[0].src: is required"}},
		{"long summary", `{"routing_key":"k","event_action":"trigger","payload":{"summary":"` + strings.Repeat("x", 1025) + `","source":"h","severity":"info"}}`,
			[]string{"payload.summary: must be at most 1024 characters, got 1025"}},
		{"resolve without dedup key", `{"routing_key":"k","event_action":"resolve"}`, []string{"dedup_key: is required for resolve"}},
		{"ack without dedup key", `{"routing_key":"k","event_action":"acknowledge"}`, []string{"dedup_key: is required for acknowledge"}},
		{"unknown action", `{"routing_key":"k","event_action":"page"}`, []string{`event_action: must be trigger, acknowledge or resolve, got "page"`}},
		{"long dedup key", `{"routing_key":"k","event_action":"resolve","dedup_key":"` + strings.Repeat("d", 256) + `"}`, []string{"dedup_key: must be at most 255 characters, got 256"}},
		{"wrong type", `{"routing_key":5}`, []string{"routing_key: must be a string, got number"}},
		{"not JSON", `routing_key=x`, []string{"invalid JSON at offset 1: invalid character 'r' looking for beginning of value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseEvents([]byte(tt.body), testNow)
			var ie *Error
			if !errors.As(err, &ie) {
				t.Fatalf("error = %v, want *Error", err)
			}
			if !reflect.DeepEqual(ie.Problems, tt.want) {
				t.Errorf("problems = %q\nwant       %q", ie.Problems, tt.want)
			}
			resp, _ := json.Marshal(EventsInvalid(err))
			if !strings.HasPrefix(string(resp), `{"status":"invalid event","message":"Event object is invalid","errors":[`) {
				t.Errorf("reply %s", resp)
			}
		})
	}
}

func TestEventsOK(t *testing.T) {
	b, _ := json.Marshal(EventsOK("abc"))
	if string(b) != `{"status":"success","message":"Event processed","dedup_key":"abc"}` {
		t.Errorf("reply %s", b)
	}
}

func FuzzParseEvents(f *testing.F) {
	f.Add([]byte(pdTrigger))
	f.Add([]byte(strings.Replace(pdTrigger, "+0000", "Z", 1)))
	f.Add([]byte(`{"routing_key":"k","dedup_key":"x","event_action":"resolve"}`))
	f.Add([]byte(`{"routing_key":"k","event_action":"trigger","payload":{"summary":"s","source":"h","severity":"info","custom_details":"text"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := ParseEvents(body, testNow)
		if err != nil {
			var ie *Error
			if !errors.As(err, &ie) || len(ie.Problems) == 0 {
				t.Fatalf("error %v is not an *Error with problems", err)
			}
			return
		}
		if ev.RoutingKey == "" || ev.DedupKey == "" || ev.Alert.Fingerprint != alert.DedupFingerprint(ev.DedupKey) {
			t.Fatalf("accepted event without identity: %+v", ev)
		}
		if ev.Action == ActionTrigger {
			checkAlert(t, "fuzz", ev.Alert)
		}
	})
}
