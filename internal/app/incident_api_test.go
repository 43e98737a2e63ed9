package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/nocsoc/nocsoc/internal/app"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/intake"
)

// call sends a request with arbitrary headers and returns status and body.
func (h *harness) call(hdr map[string]string, method, path, body string) (int, []byte) {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func bearerHdr(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok}
}

// integration creates an integration and returns its key.
func (h *harness) integration(typ, name string) string {
	h.t.Helper()
	var out struct {
		Key  string `json:"key"`
		Type string `json:"type"`
	}
	h.do("POST", "/api/v1/integrations", fmt.Sprintf(`{"type":%q,"name":%q}`, typ, name), http.StatusCreated, &out)
	if out.Key == "" || out.Type != typ {
		h.t.Fatalf("integration %s: no key in reply", name)
	}
	return out.Key
}

// userToken creates a user with a role and returns a token for it.
func (h *harness) userToken(name, role string) string {
	h.t.Helper()
	h.do("POST", "/api/v1/users", fmt.Sprintf(`{"name":%q,"role":%q,"password":"a-long-enough-password"}`, name, role), http.StatusCreated, nil)
	var tok struct {
		Token string `json:"token"`
	}
	h.do("POST", "/api/v1/tokens", fmt.Sprintf(`{"name":"t","user":%q}`, name), http.StatusCreated, &tok)
	return tok.Token
}

type incidentJSON struct {
	ID         int64             `json:"id"`
	Title      string            `json:"title"`
	Status     string            `json:"status"`
	Team       string            `json:"team"`
	Joint      bool              `json:"joint"`
	Owner      string            `json:"owner"`
	Handoffs   int               `json:"handoffs"`
	AlertCount int               `json:"alert_count"`
	MergedInto int64             `json:"merged_into"`
	Labels     map[string]string `json:"labels"`
}

type incidentDetail struct {
	Incident    incidentJSON `json:"incident"`
	Alerts      []alertJSON  `json:"alerts"`
	AlertsTotal int          `json:"alerts_total"`
	NextBefore  int64        `json:"next_before"`
	Timeline    []struct {
		Kind    string `json:"kind"`
		Actor   string `json:"actor"`
		Message string `json:"message"`
	} `json:"timeline"`
	Tasks []struct {
		ID    int64  `json:"id"`
		Title string `json:"title"`
		Done  bool   `json:"done"`
	} `json:"tasks"`
	Observables []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
		TLP   string `json:"tlp"`
	} `json:"observables"`
	Postmortem *struct {
		Category string `json:"category"`
	} `json:"postmortem"`
	Escalation struct {
		Tier int `json:"tier"`
	} `json:"escalation"`
}

func (h *harness) incident(id int64) incidentDetail {
	h.t.Helper()
	var d incidentDetail
	h.do("GET", fmt.Sprintf("/api/v1/incidents/%d", id), "", http.StatusOK, &d)
	return d
}

func (h *harness) countAlerts(query string) int {
	h.t.Helper()
	return len(h.alerts(query + "&limit=1000"))
}

func TestIntakeAlertmanagerReplay(t *testing.T) {
	h := start(t, "", "")
	key := h.integration("alertmanager", "prom")
	files, _ := filepath.Glob("/work/shared/data/alertmanager/prom2teams/*.json")
	files = append(files, "/work/shared/data/alertmanager/prometheus-msteams/prom_post_request.json")
	if len(files) < 5 {
		t.Fatalf("payloads not found: %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			parsed, perr := intake.ParseAlertmanager(body, time.Now())
			before := h.countAlerts("integration=prom")
			code, b := h.call(bearerHdr(key), "POST", "/api/v1/integrations/alertmanager", string(body))
			if perr != nil {
				if code != http.StatusBadRequest {
					t.Fatalf("invalid payload: status %d, want 400: %s", code, b)
				}
				if n := h.countAlerts("integration=prom"); n != before {
					t.Errorf("rejected payload wrote alerts: %d → %d", before, n)
				}
				return
			}
			if code != http.StatusOK {
				t.Fatalf("status %d, want 200: %s", code, b)
			}
			var rep struct {
				Alerts       int `json:"alerts"`
				Deduplicated int `json:"deduplicated"`
			}
			json.Unmarshal(b, &rep)
			if rep.Alerts != len(parsed) {
				t.Errorf("reply counts %d alerts, payload has %d", rep.Alerts, len(parsed))
			}
			// Alertmanager re-sends the same notification: nothing new.
			after := h.countAlerts("integration=prom")
			code, b = h.call(bearerHdr(key), "POST", "/api/v1/integrations/alertmanager", string(body))
			if code != http.StatusOK {
				t.Fatalf("replay: status %d: %s", code, b)
			}
			if n := h.countAlerts("integration=prom"); n != after {
				t.Errorf("replay created alerts: %d → %d", after, n)
			}
			for _, a := range h.alerts("integration=prom&limit=1000") {
				if a.Source != "alertmanager:prom" {
					t.Errorf("alert %d source %q, want alertmanager:prom", a.ID, a.Source)
				}
			}
		})
	}
	// Keys: wrong, of another type, missing; all 401 and nothing written.
	hookKey := h.integration("webhook", "hook")
	body, _ := os.ReadFile(files[0])
	before := h.countAlerts("")
	for name, hdr := range map[string]map[string]string{
		"unknown": bearerHdr("not-a-key"), "wrong type": bearerHdr(hookKey), "missing": nil, "user token": bearerHdr(h.token),
	} {
		if code, b := h.call(hdr, "POST", "/api/v1/integrations/alertmanager", string(body)); code != http.StatusUnauthorized {
			t.Errorf("%s key: status %d, want 401: %s", name, code, b)
		}
	}
	if n := h.countAlerts(""); n != before {
		t.Errorf("unauthenticated deliveries wrote alerts: %d → %d", before, n)
	}
}

func TestIntakeEventsPagerDuty(t *testing.T) {
	h := start(t, "", "")
	key := h.integration("events", "pd")
	ev := func(action, dedup string) string {
		return fmt.Sprintf(`{"routing_key":%q,"event_action":%q,"dedup_key":%q,"payload":{"summary":"db01 disk full","source":"db01","severity":"critical"}}`, key, action, dedup)
	}
	var ok struct {
		Status   string `json:"status"`
		Message  string `json:"message"`
		DedupKey string `json:"dedup_key"`
	}
	h.doAs("", "POST", "/api/v1/integrations/events", ev("trigger", "disk-db01"), http.StatusAccepted, &ok)
	if ok.Status != "success" || ok.Message != "Event processed" || ok.DedupKey != "disk-db01" {
		t.Fatalf("trigger reply %+v", ok)
	}
	h.doAs("", "POST", "/api/v1/integrations/events", ev("trigger", "disk-db01"), http.StatusAccepted, &ok)
	as := h.alerts("integration=pd")
	if len(as) != 1 {
		t.Fatalf("duplicate trigger: %d alerts, want 1", len(as))
	}
	var full struct {
		Occurrences int    `json:"occurrences"`
		IncidentID  int64  `json:"incident_id"`
		Source      string `json:"source"`
		Severity    string `json:"severity"`
	}
	h.do("GET", fmt.Sprintf("/api/v1/alerts/%d", as[0].ID), "", http.StatusOK, &full)
	if full.Occurrences != 2 || full.IncidentID == 0 || full.Source != "events:pd" || full.Severity != "critical" {
		t.Fatalf("alert after duplicate: %+v", full)
	}
	// Acknowledge through the integration acknowledges the incident.
	h.doAs("", "POST", "/api/v1/integrations/events", `{"routing_key":"`+key+`","event_action":"acknowledge","dedup_key":"disk-db01"}`, http.StatusAccepted, nil)
	if st := h.incident(full.IncidentID).Incident.Status; st != "acknowledged" {
		t.Errorf("after PD acknowledge: incident %s, want acknowledged", st)
	}
	h.doAs("", "POST", "/api/v1/integrations/events", `{"routing_key":"`+key+`","event_action":"resolve","dedup_key":"disk-db01"}`, http.StatusAccepted, nil)
	// A duplicate resolve is idempotent.
	h.doAs("", "POST", "/api/v1/integrations/events", `{"routing_key":"`+key+`","event_action":"resolve","dedup_key":"disk-db01"}`, http.StatusAccepted, nil)
	d := h.incident(full.IncidentID)
	if d.Incident.Status != "resolved" || d.Alerts[0].Status != "resolved" {
		t.Errorf("after PD resolve: incident %s, alert %s", d.Incident.Status, d.Alerts[0].Status)
	}

	amKey := h.integration("alertmanager", "am")
	before := h.countAlerts("")
	cases := map[string]string{
		"unknown key":   `{"routing_key":"nope","event_action":"trigger","payload":{"summary":"x","source":"y","severity":"info"}}`,
		"wrong type":    `{"routing_key":"` + amKey + `","event_action":"trigger","payload":{"summary":"x","source":"y","severity":"info"}}`,
		"bad action":    `{"routing_key":"` + key + `","event_action":"explode"}`,
		"bad severity":  `{"routing_key":"` + key + `","event_action":"trigger","payload":{"summary":"x","source":"y","severity":"huge"}}`,
		"not json":      `{"routing_key":`,
		"no dedup":      `{"routing_key":"` + key + `","event_action":"resolve"}`,
		"empty payload": `{"routing_key":"` + key + `","event_action":"trigger"}`,
	}
	for name, body := range cases {
		code, b := h.call(nil, "POST", "/api/v1/integrations/events", body)
		var pd struct {
			Status string   `json:"status"`
			Errors []string `json:"errors"`
		}
		json.Unmarshal(b, &pd)
		if code != http.StatusBadRequest || pd.Status != "invalid event" || len(pd.Errors) == 0 {
			t.Errorf("%s: status %d body %s, want 400 in PagerDuty's shape", name, code, b)
		}
	}
	if n := h.countAlerts(""); n != before {
		t.Errorf("rejected events wrote alerts: %d → %d", before, n)
	}
}

func TestIntakeWebhookAndKeyLifecycle(t *testing.T) {
	h := start(t, "", "")
	var created struct {
		ID  int64  `json:"id"`
		Key string `json:"key"`
	}
	h.do("POST", "/api/v1/integrations", `{"type":"webhook","name":"ci"}`, http.StatusCreated, &created)
	body := `[{"title":"build broken","severity":"medium","labels":{"service":"ci"}},{"title":"deploy stuck","labels":{"service":"cd"},"dedup_key":"deploy-1"}]`
	code, b := h.call(bearerHdr(created.Key), "POST", "/api/v1/integrations/webhook", body)
	if code != http.StatusOK {
		t.Fatalf("webhook: %d %s", code, b)
	}
	if n := h.countAlerts("integration=ci"); n != 2 {
		t.Fatalf("%d alerts, want 2", n)
	}
	code, b = h.call(bearerHdr(created.Key), "POST", "/api/v1/integrations/webhook", body)
	var rep struct {
		Deduplicated int `json:"deduplicated"`
	}
	json.Unmarshal(b, &rep)
	if code != http.StatusOK || rep.Deduplicated != 2 || h.countAlerts("integration=ci") != 2 {
		t.Fatalf("duplicate delivery: %d %s", code, b)
	}
	// Resolve one by its dedup key.
	h.doAs("bearer:"+created.Key, "POST", "/api/v1/integrations/webhook", `{"title":"deploy stuck","status":"resolved","dedup_key":"deploy-1"}`, http.StatusOK, nil)
	if n := h.countAlerts("integration=ci&status=resolved"); n != 1 {
		t.Errorf("%d resolved alerts, want 1", n)
	}
	before := h.countAlerts("")
	for name, tc := range map[string]struct {
		body string
		want int
	}{
		"unknown field": {`{"title":"x","colour":"red"}`, 400},
		"no title":      {`{"labels":{"a":"b"}}`, 400},
		"not json":      {`title=x`, 400},
		"too large":     {`{"title":"` + strings.Repeat("x", 2<<20) + `"}`, 413},
	} {
		if code, b := h.call(bearerHdr(created.Key), "POST", "/api/v1/integrations/webhook", tc.body); code != tc.want {
			t.Errorf("%s: status %d, want %d: %.200s", name, code, tc.want, b)
		}
	}
	if n := h.countAlerts(""); n != before {
		t.Errorf("bad bodies wrote alerts: %d → %d", before, n)
	}
	// The list never shows the key; disabling stops it at once.
	lb := h.do("GET", "/api/v1/integrations", "", http.StatusOK, nil)
	if strings.Contains(string(lb), created.Key) {
		t.Errorf("integration list shows the key: %s", lb)
	}
	h.do("DELETE", fmt.Sprintf("/api/v1/integrations/%d", created.ID), "", http.StatusNoContent, nil)
	if code, _ := h.call(bearerHdr(created.Key), "POST", "/api/v1/integrations/webhook", `{"title":"after disable"}`); code != http.StatusUnauthorized {
		t.Errorf("disabled key: status %d, want 401", code)
	}
	if code, _ := h.call(bearerHdr(created.Key), "POST", "/api/v1/integrations", `{"type":"webhook","name":"x"}`); code != http.StatusUnauthorized {
		t.Errorf("an integration key used as a user token: status %d, want 401", code)
	}
	for _, body := range []string{`{"type":"smoke","name":"x"}`, `{"type":"webhook"}`, `{"type":"webhook","name":"ci"}`} {
		code, b := h.call(bearerHdr(h.token), "POST", "/api/v1/integrations", body)
		if code != http.StatusBadRequest && code != http.StatusConflict {
			t.Errorf("create %s: status %d: %s", body, code, b)
		}
	}
}

// fire raises one alert through a webhook integration and returns the
// incident it attached to.
func (h *harness) fire(key, title string, labels string) (alertID, incidentID int64) {
	h.t.Helper()
	var rep struct {
		Results []struct {
			AlertID    int64 `json:"alert_id"`
			IncidentID int64 `json:"incident_id"`
		} `json:"results"`
	}
	h.doAs("bearer:"+key, "POST", "/api/v1/integrations/webhook", fmt.Sprintf(`{"title":%q,"labels":%s}`, title, labels), http.StatusOK, &rep)
	return rep.Results[0].AlertID, rep.Results[0].IncidentID
}

func TestIncidentWorkflowAPI(t *testing.T) {
	h := start(t, "", "")
	key := h.integration("webhook", "hook")
	_, id := h.fire(key, "api latency high", `{"service":"api"}`)
	if id == 0 {
		t.Fatal("alert did not open an incident")
	}
	inc := fmt.Sprintf("/api/v1/incidents/%d", id)
	var list struct {
		Incidents []incidentJSON `json:"incidents"`
	}
	h.do("GET", "/api/v1/incidents?status=triggered&team=noc", "", http.StatusOK, &list)
	if len(list.Incidents) != 1 || list.Incidents[0].ID != id {
		t.Fatalf("list: %+v", list)
	}
	conflict := func(path, body, wantMsg string) {
		t.Helper()
		code, b := h.call(bearerHdr(h.token), "POST", inc+path, body)
		if code != http.StatusConflict || !strings.Contains(string(b), wantMsg) {
			t.Errorf("POST %s: %d %s, want 409 with %q", path, code, b, wantMsg)
		}
	}
	conflict("/close", "", "cannot close a triggered incident: resolve it first")
	var got incidentJSON
	h.do("POST", inc+"/acknowledge", "", http.StatusOK, &got)
	if got.Status != "acknowledged" || got.Owner != "admin" {
		t.Fatalf("ack: %+v", got)
	}
	conflict("/acknowledge", "", "already acknowledged")
	h.do("POST", inc+"/status", `{"status":"closed"}`, http.StatusBadRequest, nil)
	h.do("POST", inc+"/status", `{"status":"investigating","note":"looking at the db"}`, http.StatusOK, &got)
	h.do("POST", inc+"/status", `{"status":"mitigated"}`, http.StatusOK, &got)
	if got.Status != "mitigated" {
		t.Fatalf("status: %+v", got)
	}
	// Hand-off: a note is required.
	var e struct {
		Field string `json:"field"`
	}
	h.do("POST", inc+"/handoff", `{"team":"soc","note":" "}`, http.StatusBadRequest, &e)
	if e.Field != "note" {
		t.Errorf("hand-off without note: field %q", e.Field)
	}
	h.do("POST", inc+"/handoff", `{"team":"mars","note":"x"}`, http.StatusBadRequest, nil)
	h.do("POST", inc+"/handoff", `{"team":"soc","note":"looks like a scraper attack"}`, http.StatusOK, &got)
	if got.Team != "soc" || got.Handoffs != 1 || got.Status != "triggered" {
		t.Errorf("after hand-off: %+v", got)
	}
	h.do("GET", "/api/v1/incidents?team=soc", "", http.StatusOK, &list)
	if len(list.Incidents) != 1 {
		t.Errorf("soc queue: %d incidents", len(list.Incidents))
	}
	h.do("POST", inc+"/handoff", `{"team":"noc","note":"both teams","joint":true}`, http.StatusOK, &got)
	h.do("GET", "/api/v1/incidents?team=soc", "", http.StatusOK, &list)
	if !got.Joint || len(list.Incidents) != 1 {
		t.Errorf("joint incident not in soc queue: %+v", got)
	}
	h.do("POST", inc+"/assign", `{"owner":"nobody"}`, http.StatusBadRequest, nil)
	h.do("POST", inc+"/assign", `{"owner":"admin"}`, http.StatusOK, nil)
	h.do("POST", inc+"/notes", `{"text":"blocked 203.0.113.7"}`, http.StatusCreated, nil)
	h.do("POST", inc+"/notes", `{"text":""}`, http.StatusBadRequest, nil)
	var task struct {
		ID int64 `json:"id"`
	}
	h.do("POST", inc+"/tasks", `{"title":"rotate keys"}`, http.StatusCreated, &task)
	h.do("POST", fmt.Sprintf("%s/tasks/%d/done", inc, task.ID), `{"done":true}`, http.StatusOK, nil)
	h.do("POST", inc+"/tasks/999/done", `{"done":true}`, http.StatusNotFound, nil)
	h.do("POST", inc+"/observables", `{"type":"ip","value":"203.0.113.7","tlp":"red"}`, http.StatusCreated, nil)
	h.do("POST", inc+"/observables", `{"type":"planet","value":"x"}`, http.StatusBadRequest, nil)
	h.do("POST", inc+"/observables", `{"type":"ip","value":"x","tlp":"purple"}`, http.StatusBadRequest, nil)
	h.do("POST", inc+"/escalate", "", http.StatusBadRequest, nil) // no policy on the default route
	pm := `{"category":"attack","summary":"credential stuffing","contributing_factors":["no rate limit"],"action_items":[{"title":"add rate limit","owner":"admin"}]}`
	if code, _ := h.call(bearerHdr(h.token), "PUT", inc+"/postmortem", pm); code != http.StatusConflict {
		t.Errorf("postmortem of an open incident: %d, want 409", code)
	}
	h.do("GET", inc+"/postmortem", "", http.StatusNotFound, nil)
	h.do("POST", inc+"/resolve", `{"note":"blocked"}`, http.StatusOK, &got)
	h.do("PUT", inc+"/postmortem", `{"category":"sunspots","summary":"x"}`, http.StatusBadRequest, nil)
	h.do("PUT", inc+"/postmortem", `{"category":"attack","summary":"x","action_items":[{"title":"y"}]}`, http.StatusBadRequest, &e)
	if e.Field != "action_items[0].owner" {
		t.Errorf("action item without owner: field %q", e.Field)
	}
	h.do("PUT", inc+"/postmortem", pm, http.StatusOK, nil)
	conflict("/status", `{"status":"investigating"}`, "cannot move an incident from resolved to investigating")
	h.do("POST", inc+"/close", "", http.StatusOK, &got)
	conflict("/reopen", "", "cannot move an incident from closed to triggered")
	h.do("POST", "/api/v1/incidents/9999/acknowledge", "", http.StatusNotFound, nil)

	d := h.incident(id)
	if d.Incident.Status != "closed" || len(d.Tasks) != 1 || !d.Tasks[0].Done || len(d.Observables) != 1 || d.Observables[0].TLP != "red" ||
		d.Postmortem == nil || d.Postmortem.Category != "attack" || d.AlertsTotal != 1 {
		t.Errorf("detail: %+v", d)
	}
	kinds := map[string]int{}
	for _, e := range d.Timeline {
		kinds[e.Kind]++
	}
	// The first alert is recorded in the "created" entry itself.
	for _, k := range []string{"created", "status", "handoff", "note", "task.added", "task.done", "observable.added", "postmortem", "assigned"} {
		if kinds[k] == 0 {
			t.Errorf("timeline has no %q entry: %v", k, kinds)
		}
	}
	var tl struct {
		Timeline []struct {
			ID int64 `json:"id"`
		} `json:"timeline"`
		NextAfter int64 `json:"next_after"`
	}
	h.do("GET", inc+"/timeline?limit=2", "", http.StatusOK, &tl)
	if len(tl.Timeline) != 2 || tl.NextAfter == 0 {
		t.Errorf("timeline page: %+v", tl)
	}
	// Newest first, paged backwards, meets the oldest-first pages.
	var all, desc struct {
		Timeline []struct {
			ID int64 `json:"id"`
		} `json:"timeline"`
		NextBefore int64 `json:"next_before"`
	}
	h.do("GET", inc+"/timeline?limit=1000", "", http.StatusOK, &all)
	h.do("GET", inc+"/timeline?order=desc&limit=2", "", http.StatusOK, &desc)
	n := len(all.Timeline)
	if len(desc.Timeline) != 2 || desc.Timeline[0].ID != all.Timeline[n-1].ID || desc.Timeline[1].ID != all.Timeline[n-2].ID || desc.NextBefore != desc.Timeline[1].ID {
		t.Fatalf("newest-first page: %+v (all %d entries)", desc, n)
	}
	h.do("GET", fmt.Sprintf("%s/timeline?order=desc&limit=2&before=%d", inc, desc.NextBefore), "", http.StatusOK, &desc)
	if len(desc.Timeline) != 2 || desc.Timeline[0].ID != all.Timeline[n-3].ID {
		t.Fatalf("second newest-first page: %+v", desc)
	}
	h.do("GET", inc+"/timeline?order=sideways", "", http.StatusBadRequest, nil)
	h.do("GET", inc+"/timeline?before=5", "", http.StatusBadRequest, nil)
}

func TestMergeAndSplitAPI(t *testing.T) {
	h := start(t, "", "")
	key := h.integration("webhook", "hook")
	// The default route groups every alert into one open incident.
	a1, inc1 := h.fire(key, "disk full", `{"host":"a"}`)
	a2, inc := h.fire(key, "disk slow", `{"host":"b"}`)
	if inc != inc1 {
		t.Fatalf("second alert opened incident %d, want %d", inc, inc1)
	}
	var moved struct {
		Alert    alertJSON    `json:"alert"`
		Incident incidentJSON `json:"incident"`
	}
	h.do("POST", fmt.Sprintf("/api/v1/alerts/%d/move", a2), `{"incident_id":0}`, http.StatusOK, &moved)
	inc2 := moved.Incident.ID
	if inc2 == inc1 || inc2 == 0 || moved.Incident.AlertCount != 1 {
		t.Fatalf("split: %+v", moved)
	}
	if d := h.incident(inc1); d.AlertsTotal != 1 || d.Alerts[0].ID != a1 {
		t.Errorf("source after split: total %d", d.AlertsTotal)
	}
	h.do("POST", fmt.Sprintf("/api/v1/alerts/%d/move", a2), `{"incident_id":`+fmt.Sprint(inc2)+`}`, http.StatusBadRequest, nil)
	h.do("POST", fmt.Sprintf("/api/v1/alerts/%d/move", a2), `{}`, http.StatusBadRequest, nil)
	h.do("POST", fmt.Sprintf("/api/v1/incidents/%d/merge", inc2), `{"into":`+fmt.Sprint(inc2)+`}`, http.StatusBadRequest, nil)
	h.do("POST", fmt.Sprintf("/api/v1/incidents/%d/merge", inc2), `{"into":4242}`, http.StatusBadRequest, nil)
	var merged incidentJSON
	h.do("POST", fmt.Sprintf("/api/v1/incidents/%d/merge", inc2), `{"into":`+fmt.Sprint(inc1)+`}`, http.StatusOK, &merged)
	if merged.ID != inc1 || merged.AlertCount != 2 {
		t.Errorf("merge result: %+v", merged)
	}
	src := h.incident(inc2).Incident
	if src.MergedInto != inc1 || src.Status != "resolved" {
		t.Errorf("merged source: %+v", src)
	}
	var page struct {
		Alerts      []alertJSON `json:"alerts"`
		AlertsTotal int         `json:"alerts_total"`
		NextBefore  int64       `json:"next_before"`
	}
	h.do("GET", fmt.Sprintf("/api/v1/incidents/%d/alerts?limit=1", inc1), "", http.StatusOK, &page)
	if len(page.Alerts) != 1 || page.AlertsTotal != 2 || page.NextBefore == 0 {
		t.Fatalf("page 1: %+v", page)
	}
	h.do("GET", fmt.Sprintf("/api/v1/incidents/%d/alerts?limit=1&before=%d", inc1, page.NextBefore), "", http.StatusOK, &page)
	if len(page.Alerts) != 1 {
		t.Errorf("page 2: %+v", page)
	}
	if n := h.countAlerts(fmt.Sprintf("incident=%d", inc1)); n != 2 {
		t.Errorf("alerts?incident=: %d, want 2", n)
	}
}

func TestSilenceSuppressesButKeepsAlert(t *testing.T) {
	h := start(t, "", "")
	key := h.integration("webhook", "hook")
	var e struct {
		Field string `json:"field"`
	}
	h.do("POST", "/api/v1/silences", `{"matchers":["service=\"db\"","team=~\"(noc\""],"duration":"1h","comment":"x"}`, http.StatusBadRequest, &e)
	if e.Field != "matchers[1]" {
		t.Errorf("bad matcher: field %q, want matchers[1]", e.Field)
	}
	h.do("POST", "/api/v1/silences", `{"matchers":["service=\"db\""],"comment":"x"}`, http.StatusBadRequest, nil)
	h.do("POST", "/api/v1/silences", `{"matchers":["service=\"db\""],"duration":"1h"}`, http.StatusBadRequest, nil)
	var sl struct {
		ID        int64  `json:"id"`
		CreatedBy string `json:"created_by"`
	}
	h.do("POST", "/api/v1/silences", `{"matchers":["service=\"db\""],"duration":"1h","comment":"db migration"}`, http.StatusCreated, &sl)
	if sl.CreatedBy != "admin" {
		t.Errorf("author %q", sl.CreatedBy)
	}
	id, inc := h.fire(key, "db replica lag", `{"service":"db"}`)
	if inc != 0 {
		t.Errorf("silenced alert opened incident %d", inc)
	}
	var a struct {
		SuppressedBy string `json:"suppressed_by"`
	}
	h.do("GET", fmt.Sprintf("/api/v1/alerts/%d", id), "", http.StatusOK, &a)
	if a.SuppressedBy != fmt.Sprintf("silence:%d", sl.ID) {
		t.Errorf("suppressed_by %q", a.SuppressedBy)
	}
	if n := h.countAlerts("suppressed=true"); n != 1 {
		t.Errorf("suppressed=true: %d", n)
	}
	h.do("GET", "/api/v1/alerts?suppressed=maybe", "", http.StatusBadRequest, nil)
	h.do("DELETE", fmt.Sprintf("/api/v1/silences/%d", sl.ID), "", http.StatusOK, nil)
	h.do("DELETE", fmt.Sprintf("/api/v1/silences/%d", sl.ID), "", http.StatusConflict, nil)
	var list struct {
		Silences []struct{ ID int64 } `json:"silences"`
	}
	h.do("GET", "/api/v1/silences", "", http.StatusOK, &list)
	if len(list.Silences) != 0 {
		t.Errorf("active silences after expiry: %d", len(list.Silences))
	}
	h.do("GET", "/api/v1/silences?expired=true", "", http.StatusOK, &list)
	if len(list.Silences) != 1 {
		t.Errorf("all silences: %d", len(list.Silences))
	}
	if _, inc := h.fire(key, "db primary down", `{"service":"db","role":"primary"}`); inc == 0 {
		t.Error("alert after the silence expired opened no incident")
	}
}

func TestIncidentAPIRBAC(t *testing.T) {
	h := start(t, "", "")
	viewer := h.userToken("vera", "viewer")
	operator := h.userToken("otto", "operator")
	key := h.integration("webhook", "hook")
	_, id := h.fire(key, "x", `{"a":"b"}`)
	inc := fmt.Sprintf("/api/v1/incidents/%d", id)
	writes := []struct{ method, path, body string }{
		{"POST", inc + "/acknowledge", ""}, {"POST", inc + "/resolve", ""}, {"POST", inc + "/close", ""},
		{"POST", inc + "/reopen", ""}, {"POST", inc + "/status", `{"status":"investigating"}`},
		{"POST", inc + "/escalate", ""}, {"POST", inc + "/deescalate", ""},
		{"POST", inc + "/handoff", `{"team":"soc","note":"n"}`}, {"POST", inc + "/assign", `{"owner":"vera"}`},
		{"POST", inc + "/notes", `{"text":"t"}`}, {"POST", inc + "/tasks", `{"title":"t"}`},
		{"POST", inc + "/tasks/1/done", `{"done":true}`}, {"POST", inc + "/observables", `{"type":"ip","value":"1.2.3.4"}`},
		{"PUT", inc + "/postmortem", `{}`}, {"POST", inc + "/merge", `{"into":1}`}, {"POST", "/api/v1/alerts/1/move", `{"incident_id":0}`},
		{"POST", "/api/v1/silences", `{}`}, {"DELETE", "/api/v1/silences/1", ""},
		{"POST", "/api/v1/escalation-policies", `{}`}, {"PUT", "/api/v1/escalation-policies/1", `{}`}, {"DELETE", "/api/v1/escalation-policies/1", ""},
		{"POST", "/api/v1/schedules", `{}`}, {"PUT", "/api/v1/schedules/1", `{}`}, {"DELETE", "/api/v1/schedules/1", ""},
		{"POST", "/api/v1/channels", `{}`}, {"PUT", "/api/v1/channels/1", `{}`}, {"DELETE", "/api/v1/channels/1", ""},
		{"POST", "/api/v1/channels/1/test", ""},
		{"POST", "/api/v1/runbooks", `{}`}, {"PUT", "/api/v1/runbooks/1", `{}`}, {"DELETE", "/api/v1/runbooks/1", ""},
		{"POST", "/api/v1/integrations", `{}`}, {"DELETE", "/api/v1/integrations/1", ""},
	}
	for _, wr := range writes {
		if code, b := h.call(bearerHdr(viewer), wr.method, wr.path, wr.body); code != http.StatusForbidden {
			t.Errorf("viewer %s %s: %d, want 403: %s", wr.method, wr.path, code, b)
		}
	}
	// Operators act on incidents but do not manage integrations or channels.
	for _, wr := range []struct{ method, path, body string }{
		{"POST", "/api/v1/integrations", `{}`}, {"POST", "/api/v1/channels", `{}`}, {"POST", "/api/v1/escalation-policies", `{}`},
	} {
		if code, _ := h.call(bearerHdr(operator), wr.method, wr.path, wr.body); code != http.StatusForbidden {
			t.Errorf("operator %s %s: %d, want 403", wr.method, wr.path, code)
		}
	}
	if code, b := h.call(bearerHdr(operator), "POST", inc+"/acknowledge", ""); code != http.StatusOK {
		t.Errorf("operator acknowledge: %d %s", code, b)
	}
	if d := h.incident(id); d.Incident.Status != "acknowledged" || d.Incident.Owner != "otto" {
		t.Errorf("viewer writes changed the incident or operator ack failed: %+v", d.Incident)
	}
	for _, path := range []string{"/api/v1/incidents", inc, inc + "/alerts", inc + "/timeline", "/api/v1/silences", "/api/v1/escalation-policies",
		"/api/v1/schedules", "/api/v1/oncall", "/api/v1/channels", "/api/v1/runbooks", "/api/v1/notifications",
		"/api/v1/notifications/dead-letters", "/api/v1/metrics/operations"} {
		if code, b := h.call(bearerHdr(viewer), "GET", path, ""); code != http.StatusOK {
			t.Errorf("viewer GET %s: %d %s", path, code, b)
		}
	}
	if code, _ := h.call(nil, "GET", "/api/v1/incidents", ""); code != http.StatusUnauthorized {
		t.Errorf("anonymous read: %d", code)
	}
}

func TestChannelsSecretsAndTest(t *testing.T) {
	h := start(t, "", "")
	var hits atomic.Int32
	var sig atomic.Value
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		for k, v := range r.Header {
			if strings.Contains(strings.ToLower(k), "signature") {
				sig.Store(v[0])
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer target.Close()
	const secret, password = "hmac-s3cret-value-1", "smtp-pa55word-value-2"
	var ch struct {
		ID        int64  `json:"id"`
		SecretSet bool   `json:"secret_set"`
		Secret    string `json:"secret"`
	}
	h.do("POST", "/api/v1/channels", fmt.Sprintf(`{"name":"ops-hook","type":"webhook","url":%q,"secret":%q}`, target.URL, secret), http.StatusCreated, &ch)
	if !ch.SecretSet || ch.Secret != "" {
		t.Errorf("created channel: %+v", ch)
	}
	h.do("POST", "/api/v1/channels", fmt.Sprintf(`{"name":"mail","type":"email","email":{"to":["ops@example.com"],"from":"nocsoc@example.com","host":"127.0.0.1","port":2525,"username":"u","password":%q}}`, password), http.StatusCreated, nil)
	h.do("POST", "/api/v1/channels", `{"name":"ops-hook","type":"webhook","url":"http://127.0.0.1:1/"}`, http.StatusConflict, nil)
	h.do("POST", "/api/v1/channels", `{"name":"bad","type":"webhook","url":"ftp://x"}`, http.StatusBadRequest, nil)
	h.do("POST", "/api/v1/channels", `{"name":"bad","type":"pager"}`, http.StatusBadRequest, nil)
	// Update without a secret keeps it.
	h.do("PUT", fmt.Sprintf("/api/v1/channels/%d", ch.ID), fmt.Sprintf(`{"type":"webhook","url":%q}`, target.URL), http.StatusOK, &ch)
	if !ch.SecretSet {
		t.Error("update without secret dropped it")
	}
	var res struct {
		OK         bool `json:"ok"`
		HTTPStatus int  `json:"http_status"`
	}
	h.do("POST", fmt.Sprintf("/api/v1/channels/%d/test", ch.ID), "", http.StatusOK, &res)
	if !res.OK || res.HTTPStatus != http.StatusNoContent || hits.Load() != 1 || sig.Load() == nil {
		t.Errorf("channel test: %+v, hits %d, signature %v", res, hits.Load(), sig.Load())
	}
	target.Close()
	h.do("POST", "/api/v1/channels/ops-hook/test", "", http.StatusOK, &res)
	if res.OK {
		t.Error("test through a closed server reported ok")
	}
	// Policy targets the channel, so it cannot be deleted.
	h.do("POST", "/api/v1/escalation-policies", `{"name":"p","tiers":[{"name":"L1","timeout":"5m","targets":[{"type":"channel","name":"ops-hook"}]}]}`, http.StatusCreated, nil)
	h.do("DELETE", "/api/v1/channels/ops-hook", "", http.StatusConflict, nil)

	for _, path := range []string{"/api/v1/channels", fmt.Sprintf("/api/v1/channels/%d", ch.ID), "/api/v1/channels/mail", "/api/v1/audit?limit=1000", "/api/v1/escalation-policies"} {
		b := h.do("GET", path, "", http.StatusOK, nil)
		if strings.Contains(string(b), secret) || strings.Contains(string(b), password) {
			t.Errorf("GET %s shows a secret: %s", path, b)
		}
	}
}

func TestPoliciesSchedulesOncall(t *testing.T) {
	h := start(t, "", "")
	h.userToken("alice", "operator")
	h.userToken("bob", "operator")
	var e struct {
		Field string `json:"field"`
		Error string `json:"error"`
	}
	h.do("POST", "/api/v1/schedules", `{"name":"noc-l1","team":"noc","tier":"L1","timezone":"UTC","users":[],"rotation":"daily","handover":"09:00","start":"2026-01-01T00:00:00Z"}`, http.StatusBadRequest, &e)
	if e.Field != "users" {
		t.Errorf("schedule without users: field %q", e.Field)
	}
	h.do("POST", "/api/v1/schedules", `{"name":"noc-l1","team":"noc","tier":"L1","timezone":"UTC","users":["alice","ghost"],"rotation":"daily","handover":"09:00","start":"2026-01-01T00:00:00Z"}`, http.StatusBadRequest, &e)
	if e.Field != "users[1]" {
		t.Errorf("unknown user: field %q", e.Field)
	}
	var sc struct {
		ID int64 `json:"id"`
	}
	h.do("POST", "/api/v1/schedules", `{"name":"noc-l1","team":"noc","tier":"L1","timezone":"Europe/Paris","users":["alice","bob"],"rotation":"daily","handover":"09:00","start":"2026-01-01T00:00:00Z"}`, http.StatusCreated, &sc)
	var oc struct {
		OnCall []struct {
			Team, Tier, User string
		} `json:"oncall"`
	}
	h.do("GET", "/api/v1/oncall", "", http.StatusOK, &oc)
	if len(oc.OnCall) != 1 || oc.OnCall[0].Team != "noc" || (oc.OnCall[0].User != "alice" && oc.OnCall[0].User != "bob") {
		t.Errorf("oncall: %+v", oc)
	}
	h.do("POST", "/api/v1/escalation-policies", `{"name":"loop","tiers":[{"name":"L1","timeout":"5m","targets":[{"type":"policy","name":"loop"}]}]}`, http.StatusBadRequest, &e)
	if !strings.Contains(e.Error, "loops to itself") {
		t.Errorf("self loop: %+v", e)
	}
	h.do("POST", "/api/v1/escalation-policies", `{"name":"noc","tiers":[{"name":"L1","timeout":"5m","targets":[{"type":"schedule","name":"nope"}]}]}`, http.StatusBadRequest, nil)
	var pol struct {
		ID int64 `json:"id"`
	}
	h.do("POST", "/api/v1/escalation-policies", `{"name":"noc","tiers":[{"name":"L1","timeout":"5m","targets":[{"type":"schedule","name":"noc-l1"}]},{"name":"L2","timeout":"10m","targets":[{"type":"user","name":"bob"}]}],"repeat":1}`, http.StatusCreated, &pol)
	h.do("POST", "/api/v1/escalation-policies", `{"name":"noc","tiers":[{"name":"L1","timeout":"5m","targets":[{"type":"user","name":"bob"}]}]}`, http.StatusConflict, nil)
	h.do("DELETE", fmt.Sprintf("/api/v1/schedules/%d", sc.ID), "", http.StatusConflict, nil)
	h.do("PUT", fmt.Sprintf("/api/v1/escalation-policies/%d", pol.ID), `{"tiers":[{"name":"L1","timeout":"5m","targets":[{"type":"user","name":"alice"}]}]}`, http.StatusOK, nil)
	h.do("DELETE", fmt.Sprintf("/api/v1/schedules/%d", sc.ID), "", http.StatusNoContent, nil)
	h.do("DELETE", "/api/v1/escalation-policies/noc", "", http.StatusNoContent, nil)
	h.do("GET", "/api/v1/escalation-policies/noc", "", http.StatusNotFound, nil)

	// Runbooks: GET one renders sanitised HTML.
	var rb struct {
		ID   int64  `json:"id"`
		HTML string `json:"html"`
	}
	h.do("POST", "/api/v1/runbooks", `{"name":"disk-full","title":"Disk full","markdown":"# Disk\n- [ ] check df\n<script>alert(1)</script>"}`, http.StatusCreated, &rb)
	h.do("GET", "/api/v1/runbooks/disk-full", "", http.StatusOK, &rb)
	if !strings.Contains(rb.HTML, "<h1") || strings.Contains(rb.HTML, "<script>") {
		t.Errorf("runbook html: %s", rb.HTML)
	}
	h.do("POST", "/api/v1/runbooks", `{"name":"Bad Name","markdown":"x"}`, http.StatusBadRequest, nil)

	var m map[string]any
	h.do("GET", "/api/v1/metrics/operations?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z&team=noc", "", http.StatusOK, &m)
	for _, k := range []string{"mtta", "mttr", "incidents", "alerts", "alerts_per_incident", "by_team", "by_severity", "by_service", "by_tier"} {
		if _, ok := m[k]; !ok {
			t.Errorf("metrics reply lacks %q: %v", k, m)
		}
	}
	h.do("GET", "/api/v1/metrics/operations?team=mars", "", http.StatusBadRequest, nil)
	h.do("GET", "/api/v1/notifications?status=lost", "", http.StatusBadRequest, nil)
}

// bootBench starts a server for a benchmark and returns its URL, an admin
// token and a stop function.
func bootBench(b *testing.B) (string, string, func()) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, app.Options{DataDir: b.TempDir(), Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
		Stderr: io.Discard, AdminPassword: adminPassword, ConfigPoll: -1})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	post := func(path, body string, hdr func(*http.Request)) []byte {
		req, _ := http.NewRequest("POST", a.URL()+path, strings.NewReader(body))
		hdr(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			b.Fatalf("%s: %d %s", path, resp.StatusCode, out)
		}
		return out
	}
	var tok struct{ Token string }
	json.Unmarshal(post("/api/v1/tokens", `{"name":"bench"}`, func(r *http.Request) { r.SetBasicAuth("admin", adminPassword) }), &tok)
	// Shutting down is not part of what is measured.
	return a.URL(), tok.Token, func() { b.StopTimer(); cancel(); <-done }
}

func benchPost(b *testing.B, c *http.Client, url, auth, body string, want int) []byte {
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		b.Fatalf("%s: %d %s", url, resp.StatusCode, out)
	}
	return out
}

// BenchmarkIntakeEvents measures PagerDuty-style intake over HTTP with
// dedup and routing: one alert per request, many concurrent senders.
// alerts/s = 1e9 / ns/op.
func BenchmarkIntakeEvents(b *testing.B) {
	base, tok, stop := bootBench(b)
	defer stop()
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	var it struct{ Key string }
	json.Unmarshal(benchPost(b, c, base+"/api/v1/integrations", tok, `{"type":"events","name":"bench"}`, http.StatusCreated), &it)
	var n atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			body := fmt.Sprintf(`{"routing_key":%q,"event_action":"trigger","dedup_key":"k-%d","payload":{"summary":"s","source":"h%d","severity":"warning"}}`, it.Key, i%20000, i%50)
			benchPost(b, c, base+"/api/v1/integrations/events", "", body, http.StatusAccepted)
		}
	})
}

// BenchmarkIncidentDetail10k loads the detail of an incident with 10,000
// attached alerts (the first page only).
func BenchmarkIncidentDetail10k(b *testing.B) {
	base, tok, stop := bootBench(b)
	defer stop()
	c := &http.Client{}
	var it struct{ Key string }
	json.Unmarshal(benchPost(b, c, base+"/api/v1/integrations", tok, `{"type":"webhook","name":"bench"}`, http.StatusCreated), &it)
	for batch := 0; batch < 20; batch++ {
		var sb strings.Builder
		sb.WriteByte('[')
		for i := 0; i < 500; i++ {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"title":"a","labels":{"n":"%d"}}`, batch*500+i)
		}
		sb.WriteByte(']')
		benchPost(b, c, base+"/api/v1/integrations/webhook", it.Key, sb.String(), http.StatusOK)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest("GET", base+"/api/v1/incidents/1", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var d struct {
			AlertsTotal int `json:"alerts_total"`
		}
		json.NewDecoder(resp.Body).Decode(&d)
		resp.Body.Close()
		if d.AlertsTotal != 10000 {
			b.Fatalf("alerts_total %d", d.AlertsTotal)
		}
	}
}
