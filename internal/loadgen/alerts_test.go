package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/intake"
)

// TestAlertBodyParses feeds generated bodies to nocsoc's real intake
// parsers (and decodes Alertmanager's v2 shape), so the generator cannot
// drift from what the endpoints accept.
func TestAlertBodyParses(t *testing.T) {
	now := time.Date(2030, 6, 1, 12, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name     string
		opts     AlertOptions
		first    int64
		n        int
		wantInst []string
		wantSev  string
	}{
		{"events warning", AlertOptions{Format: FormatEvents, Key: "k1", Distinct: 10, Prefix: "lg"}, 13, 1, []string{"lg-3"}, "medium"},
		{"events critical", AlertOptions{Format: FormatEvents, Key: `k"2`, Critical: true, Prefix: "p"}, 7, 1, []string{"p-7"}, "critical"},
		{"alertmanager batch", AlertOptions{Format: FormatAlertmanager, Key: "k", Distinct: 2, Prefix: "lg"}, 0, 3, []string{"lg-0", "lg-1", "lg-0"}, "warning"},
		{"alertmanager critical", AlertOptions{Format: FormatAlertmanager, Key: "k", Critical: true, Prefix: "x"}, 41, 1, []string{"x-41"}, "critical"},
		{"am-v2 batch", AlertOptions{Format: FormatAMv2, Prefix: "lg"}, 5, 2, []string{"lg-5", "lg-6"}, "warning"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := AlertBody(nil, tt.opts, tt.first, tt.n, now)
			sent, ok := sentTime(body)
			if !ok || !sent.Equal(now) {
				t.Errorf("sentTime = %v, %v; want %v", sent, ok, now)
			}
			var got []map[string]string // labels per alert
			switch tt.opts.Format {
			case FormatEvents:
				ev, err := intake.ParseEvents(body, now)
				if err != nil {
					t.Fatalf("ParseEvents: %v\n%s", err, body)
				}
				if ev.RoutingKey != tt.opts.Key || ev.DedupKey != tt.wantInst[0] || ev.Alert.Severity != tt.wantSev {
					t.Errorf("event = key %q dedup %q severity %q", ev.RoutingKey, ev.DedupKey, ev.Alert.Severity)
				}
				if !strings.Contains(ev.Alert.Title, SentMarker) {
					t.Errorf("title %q lacks %s", ev.Alert.Title, SentMarker)
				}
				got = append(got, map[string]string{"instance": ev.Alert.Labels["source"], "severity": tt.wantSev})
			case FormatAlertmanager:
				as, err := intake.ParseAlertmanager(body, now)
				if err != nil {
					t.Fatalf("ParseAlertmanager: %v\n%s", err, body)
				}
				for _, a := range as {
					if !strings.Contains(a.Title, SentMarker) || !a.StartedAt.Equal(now) {
						t.Errorf("alert title %q started %v", a.Title, a.StartedAt)
					}
					got = append(got, a.Labels)
				}
			case FormatAMv2:
				var as []struct {
					Labels      map[string]string `json:"labels"`
					Annotations map[string]string `json:"annotations"`
					StartsAt    time.Time         `json:"startsAt"`
				}
				if err := json.Unmarshal(body, &as); err != nil {
					t.Fatalf("decode: %v\n%s", err, body)
				}
				for _, a := range as {
					if !a.StartsAt.Equal(now) || !strings.Contains(a.Annotations["summary"], SentMarker) {
						t.Errorf("alert %+v", a)
					}
					got = append(got, a.Labels)
				}
			}
			if len(got) != len(tt.wantInst) {
				t.Fatalf("got %d alerts, want %d", len(got), len(tt.wantInst))
			}
			for i, l := range got {
				if l["instance"] != tt.wantInst[i] || l["severity"] != tt.wantSev {
					t.Errorf("alert %d labels %v; want instance %s severity %s", i, l, tt.wantInst[i], tt.wantSev)
				}
			}
		})
	}
}

// TestAlertBodySameLabelsAcrossFormats checks that nocsoc's Alertmanager
// intake and Alertmanager's own API get the same label sets, hence the
// same fingerprints: the comparison runs one stream.
func TestAlertBodySameLabelsAcrossFormats(t *testing.T) {
	now := time.Unix(1900000000, 0)
	o := AlertOptions{Distinct: 4, Prefix: "s"}
	o.Format = FormatAlertmanager
	as, err := intake.ParseAlertmanager(AlertBody(nil, o, 0, 8, now), now)
	if err != nil {
		t.Fatal(err)
	}
	o.Format = FormatAMv2
	var v2 []struct{ Labels map[string]string }
	if err := json.Unmarshal(AlertBody(nil, o, 0, 8, now), &v2); err != nil {
		t.Fatal(err)
	}
	fps := map[string]bool{}
	for i := range as {
		if alert.Fingerprint(as[i].Labels) != alert.Fingerprint(v2[i].Labels) {
			t.Errorf("alert %d: labels differ: %v vs %v", i, as[i].Labels, v2[i].Labels)
		}
		fps[as[i].Fingerprint] = true
	}
	if len(fps) != 4 {
		t.Errorf("8 alerts over 4 label sets gave %d fingerprints", len(fps))
	}
}

func TestAlertOptionsValidate(t *testing.T) {
	ok := AlertOptions{URL: "http://127.0.0.1:1/x", Key: "k", Format: FormatEvents, Concurrency: 1, Duration: time.Second}
	tests := []struct {
		name string
		mod  func(*AlertOptions)
		flag string
	}{
		{"bad url", func(o *AlertOptions) { o.URL = "ftp://x" }, "url"},
		{"no key", func(o *AlertOptions) { o.Key = "" }, "key"},
		{"bad format", func(o *AlertOptions) { o.Format = "snmp" }, "format"},
		{"negative rate", func(o *AlertOptions) { o.Rate = -1 }, "rate"},
		{"no concurrency", func(o *AlertOptions) { o.Concurrency = 0 }, "concurrency"},
		{"no duration", func(o *AlertOptions) { o.Duration = 0 }, "duration"},
		{"negative distinct", func(o *AlertOptions) { o.Distinct = -2 }, "distinct"},
		{"events batch", func(o *AlertOptions) { o.Batch = 5 }, "batch"},
		{"huge batch", func(o *AlertOptions) { o.Format, o.Batch = FormatAMv2, 5000 }, "batch"},
		{"negative count", func(o *AlertOptions) { o.Count = -1 }, "count"},
		{"quote in prefix", func(o *AlertOptions) { o.Prefix = `a"b` }, "prefix"},
		{"valid", func(o *AlertOptions) {}, ""},
		{"am-v2 without key", func(o *AlertOptions) { o.Format, o.Key = FormatAMv2, "" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.mod(&o)
			err := o.validate()
			var fe *FlagError
			switch {
			case tt.flag == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.flag != "" && (!errors.As(err, &fe) || fe.Flag != tt.flag):
				t.Fatalf("error %v; want one naming --%s", err, tt.flag)
			}
		})
	}
}

// TestRunAlerts drives a real loopback server and checks what arrived and
// what was counted, for success and for refused deliveries.
func TestRunAlerts(t *testing.T) {
	tests := []struct {
		name         string
		format       string
		batch        int
		status       int
		wantAccepted int64
		wantFailed   int64
	}{
		{"events accepted", FormatEvents, 1, http.StatusAccepted, 40, 0},
		{"alertmanager batches", FormatAlertmanager, 7, http.StatusOK, 40, 0},
		{"am-v2 refused", FormatAMv2, 10, http.StatusBadRequest, 0, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			alerts, auths := 0, map[string]bool{}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				alerts += strings.Count(string(b), SentMarker)
				auths[r.Header.Get("Authorization")] = true
				mu.Unlock()
				w.WriteHeader(tt.status)
				fmt.Fprint(w, `{"status":"x"}`)
			}))
			defer srv.Close()
			r, err := RunAlerts(context.Background(), AlertOptions{URL: srv.URL, Key: "sekrit", Format: tt.format,
				Concurrency: 3, Duration: time.Minute, Distinct: 5, Batch: tt.batch, Count: 40})
			if err != nil {
				t.Fatal(err)
			}
			if alerts != 40 || r.Sent != 40 {
				t.Errorf("server saw %d alerts, report sent %d; want 40", alerts, r.Sent)
			}
			if r.Accepted != tt.wantAccepted || r.Failed != tt.wantFailed {
				t.Errorf("accepted %d failed %d; want %d %d (%s)", r.Accepted, r.Failed, tt.wantAccepted, tt.wantFailed, r)
			}
			wantReq := (40 + int64(tt.batch) - 1) / int64(tt.batch)
			if r.Requests != wantReq {
				t.Errorf("requests %d, want %d", r.Requests, wantReq)
			}
			if tt.wantFailed > 0 && !strings.Contains(r.FirstError, "status 400") {
				t.Errorf("first error %q", r.FirstError)
			}
			wantAuth := map[string]bool{"": true}
			if tt.format == FormatAlertmanager {
				wantAuth = map[string]bool{"Bearer sekrit": true}
			}
			if fmt.Sprint(auths) != fmt.Sprint(wantAuth) {
				t.Errorf("Authorization headers %v, want %v", auths, wantAuth)
			}
			if r.P50 <= 0 || r.P99 < r.P50 || r.Max < r.P99 {
				t.Errorf("quantiles p50 %v p99 %v max %v", r.P50, r.P99, r.Max)
			}
			if !strings.Contains(r.String(), "accepted_per_s=") {
				t.Errorf("report line %q", r)
			}
		})
	}
}

func TestReceiver(t *testing.T) {
	now := time.Unix(1900000000, 0)
	rc := NewReceiver(func() time.Time { return now })
	srv := httptest.NewServer(rc)
	defer srv.Close()
	post := func(path, body string) int {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i, d := range []time.Duration{10, 20, 30, 40, 250} {
		sent := now.Add(-d * time.Millisecond).UnixNano()
		body := fmt.Sprintf(`{"event":"triggered","incident_id":%d,"title":"loadgen alert lg-%d %s%d"}`, i, i, SentMarker, sent)
		if got := post("/hook", body); got != http.StatusNoContent {
			t.Fatalf("POST status %d", got)
		}
	}
	post("/hook", `{"event":"triggered","title":"no stamp"}`)
	post("/hook", `{"title":"bad stamp sent_ns=x"}`)

	resp, err := http.Get(srv.URL + "/-/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st ReceiverStats
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := ReceiverStats{Deliveries: 7, Measured: 5, Unmeasured: 2, P50ms: 30, P90ms: 250, P99ms: 250, MaxMs: 250}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	if got := post("/-/reset", ""); got != http.StatusNoContent {
		t.Fatalf("reset status %d", got)
	}
	if st := rc.Stats(); st != (ReceiverStats{}) {
		t.Errorf("after reset %+v", st)
	}
}
