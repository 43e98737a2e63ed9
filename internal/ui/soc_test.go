package ui

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/incident"
	"github.com/nocsoc/nocsoc/internal/response"
	"github.com/nocsoc/nocsoc/internal/store"
)

// fire raises an alert through the incident service, as intake does.
func (e *env) fire(title, team, sev string, labels map[string]string) response.Outcome {
	e.t.Helper()
	l := map[string]string{"alertname": title}
	for k, v := range labels {
		l[k] = v
	}
	outs, err := e.resp.Submit(context.Background(), response.Op{Kind: response.OpFire,
		Alert: alert.Alert{Title: title, Team: team, Severity: sev, Source: "test", Labels: l}})
	if err != nil {
		e.t.Fatal(err)
	}
	return outs[0]
}

// flashOf follows a POST's redirect and returns the page's flash and error.
func (e *env) flashOf(c *http.Client, resp *http.Response) (flash, errMsg string) {
	e.t.Helper()
	if resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("POST: status %d, want 303", resp.StatusCode)
	}
	_, body := e.get(c, resp.Header.Get("Location"))
	if m := regexp.MustCompile(`<p class="flash" role="status">([^<]*)</p>`).FindStringSubmatch(body); m != nil {
		flash = html.UnescapeString(m[1])
	}
	if m := regexp.MustCompile(`<p class="error" role="alert">([^<]*)</p>`).FindStringSubmatch(body); m != nil {
		errMsg = html.UnescapeString(m[1])
	}
	return flash, errMsg
}

func TestSOCQueueActions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	o1 := e.fire("disk full", alert.TeamNOC, "high", map[string]string{"host": "db1"})
	o2 := e.fire("brute force", alert.TeamSOC, "critical", map[string]string{"source_ip": "10.0.0.9"})
	// Both alerts group into one incident; split the second out so the
	// queue can merge it back.
	if _, err := e.resp.MoveAlert(ctx, store.Actor{Name: "test"}, o2.AlertID, 0); err != nil {
		t.Fatal(err)
	}
	a2, _ := e.st.GetAlert(ctx, o2.AlertID)
	inc2 := a2.IncidentID
	if inc2 == o1.IncidentID {
		t.Fatalf("split kept alert 2 on incident %d", inc2)
	}
	c, csrf := e.login("operator", passwords["operator"])
	post := func(path string, form url.Values) *http.Response {
		form.Set("csrf", csrf)
		resp, _ := e.post(c, path, form)
		return resp
	}

	tests := []struct {
		name      string
		path      string
		form      url.Values
		wantFlash string
		wantErr   string
	}{
		{"no selection", "/soc/action", url.Values{"action": {"ack"}}, "", "ids: select at least one alert"},
		{"bad id", "/soc/action", url.Values{"action": {"ack"}, "ids": {"x1"}}, "", `ids[0]: "x1" is not an alert id`},
		{"unknown action", "/soc/action", url.Values{"action": {"delete"}, "ids": {"1"}}, "", `action: unknown action "delete"`},
		{"assign without owner", "/soc/action", url.Values{"action": {"assign"}, "ids": {"1"}}, "", "owner: name the user"},
		{"assign unknown user", "/soc/action", url.Values{"action": {"assign"}, "ids": {"1"}, "owner": {"nobody"}}, "", `user "nobody" does not exist`},
		{"merge into missing incident", "/soc/action", url.Values{"action": {"merge"}, "ids": {"1"}, "into": {"99"}}, "", "incident 99"},
		{"merge into nonsense", "/soc/action", url.Values{"action": {"merge"}, "ids": {"1"}, "into": {"abc"}}, "", `into: "abc" is not an incident id`},
		{"escalate without policy", "/soc/action", url.Values{"action": {"escalate"}, "ids": {"1"}}, "", "policy: the incident has no escalation policy"},
		{"ack both", "/soc/action", url.Values{"action": {"ack"}, "ids": {"1", "2"}}, "Acknowledged 2 alert(s).", ""},
		{"assign", "/soc/action?id=2", url.Values{"action": {"assign"}, "owner": {"admin"}}, "Assigned 1 incident(s) to admin.", ""},
		{"merge alert 2 into incident 1", "/soc/action", url.Values{"action": {"merge"}, "ids": {"2"}, "into": {"#1"}}, "Moved 1 alert(s) into incident 1.", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			flash, msg := e.flashOf(c, post(tc.path, tc.form))
			if !strings.Contains(flash, tc.wantFlash) || (tc.wantFlash == "" && flash != "") {
				t.Errorf("flash %q, want %q", flash, tc.wantFlash)
			}
			if !strings.Contains(msg, tc.wantErr) || (tc.wantErr == "" && msg != "") {
				t.Errorf("error %q, want %q", msg, tc.wantErr)
			}
		})
	}
	a1, _ := e.st.GetAlert(ctx, o1.AlertID)
	a2, _ = e.st.GetAlert(ctx, o2.AlertID)
	if a1.AcknowledgedAt == nil || a2.AcknowledgedAt == nil {
		t.Errorf("alerts not acknowledged: %v %v", a1.AcknowledgedAt, a2.AcknowledgedAt)
	}
	if a2.IncidentID != o1.IncidentID {
		t.Errorf("alert 2 on incident %d, want %d", a2.IncidentID, o1.IncidentID)
	}
	inc, _ := e.st.GetIncident(ctx, inc2)
	if inc.Owner != "admin" || inc.Status != incident.StatusAcknowledged {
		t.Errorf("incident 2: owner %q status %q", inc.Owner, inc.Status)
	}
	if n := auditCount(t, e.st, "alert.ack"); n != 2 {
		t.Errorf("alert.ack audited %d times, want 2", n)
	}

	// Silences: prefilled from the labels; a bad matcher changes nothing.
	_, body := e.get(c, "/soc/alerts/1/silence")
	if !strings.Contains(body, `host=&#34;db1&#34;`) {
		t.Errorf("silence form not prefilled from labels:\n%s", body)
	}
	bad := url.Values{"matchers": {`host=~"(("`}, "duration": {"2h"}, "comment": {"maintenance"}}
	if resp := post("/soc/alerts/1/silence", bad); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("bad matcher: status %d, want 422", resp.StatusCode)
	}
	for _, f := range []url.Values{
		{"matchers": {`host="db1"`}, "duration": {"forever"}, "comment": {"x"}},
		{"matchers": {`host="db1"`}, "duration": {"2h"}, "comment": {""}},
		{"matchers": {""}, "duration": {"2h"}, "comment": {"x"}},
	} {
		if resp := post("/soc/alerts/1/silence", f); resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("bad silence %v: status %d, want 422", f, resp.StatusCode)
		}
	}
	if ss, _ := e.st.ListSilences(ctx, true); len(ss) != 0 {
		t.Fatalf("rejected silences were stored: %v", ss)
	}
	good := url.Values{"matchers": {"host=\"db1\"\nalertname=\"disk full\""}, "duration": {"2h"}, "comment": {"replacing disk"}, "back": {"/soc?team=noc"}}
	resp := post("/soc/alerts/1/silence", good)
	if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || loc != "/soc?team=noc" {
		t.Errorf("silence: %d %q", resp.StatusCode, loc)
	}
	if ss, _ := e.st.ListSilences(ctx, true); len(ss) != 1 || len(ss[0].Matchers) != 2 {
		t.Errorf("silences: %+v", ss)
	}
	// The next firing of a matching alert is suppressed.
	e.fire("disk full", alert.TeamNOC, "high", map[string]string{"host": "db1", "mount": "/var"})
	if _, body := e.get(c, "/soc?suppressed=yes"); !strings.Contains(body, "suppressed</span>") {
		t.Errorf("suppressed filter does not show the silenced alert")
	}
}

func TestSOCQueuePaging(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// 250 alerts straight into the store (the service's intake is not
	// what is tested here): odd ones are SOC.
	err := e.st.Batch(ctx, func(tx *store.Tx) error {
		for i := range 250 {
			team := alert.TeamNOC
			if i%2 == 1 {
				team = alert.TeamSOC
			}
			l := map[string]string{"n": fmt.Sprint(i)}
			if _, _, err := tx.UpsertAlert(alert.Alert{Fingerprint: alert.Fingerprint(l), Team: team, Origin: alert.OriginNatural,
				Severity: "low", Title: fmt.Sprintf("alert number %d", i), Labels: l, Source: "bulk", StartedAt: time.Now()}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := e.login("viewer", passwords["viewer"])
	idRE := regexp.MustCompile(`data-id="(\d+)"`)
	olderRE := regexp.MustCompile(`href="([^"]+)" id="older"`)
	seen := map[string]bool{}
	path, pages := "/soc", 0
	for path != "" {
		_, body := e.get(c, path)
		pages++
		for _, m := range idRE.FindAllStringSubmatch(body, -1) {
			if seen[m[1]] {
				t.Fatalf("alert %s on two pages", m[1])
			}
			seen[m[1]] = true
		}
		path = ""
		if m := olderRE.FindStringSubmatch(body); m != nil {
			path = strings.ReplaceAll(m[1], "&amp;", "&")
		}
	}
	if pages != 3 || len(seen) != 250 {
		t.Errorf("%d pages, %d alerts; want 3 pages, 250 alerts", pages, len(seen))
	}
	tests := []struct {
		query string
		want  int
		code  int
	}{
		{"?team=soc", 100, 200},
		{"?team=soc&before=10", 4, 200},
		{"?q=number+24", 11, 200},      // 24 and 240…249
		{"?q=alert+number+7", 11, 200}, // 7 and 70…79
		{"?team=xyz", 0, 400},
		{"?severity=urgent", 0, 400},
		{"?before=-1", 0, 400},
	}
	for _, tc := range tests {
		resp, body := e.get(c, "/soc"+tc.query)
		if resp.StatusCode != tc.code {
			t.Errorf("%s: status %d, want %d", tc.query, resp.StatusCode, tc.code)
			continue
		}
		if got := len(idRE.FindAllString(body, -1)); tc.code == 200 && got != tc.want {
			t.Errorf("%s: %d rows, want %d", tc.query, got, tc.want)
		}
	}
	if _, body := e.get(c, "/soc/rows?team=noc"); strings.Contains(body, "<html") || len(idRE.FindAllString(body, -1)) != 100 {
		t.Errorf("rows fragment: %.300s", body)
	}
}

func TestIncidentWorkflowPages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	o := e.fire("link down", alert.TeamNOC, "high", map[string]string{"device": "sw1"})
	id := o.IncidentID
	self := fmt.Sprintf("/incidents/%d", id)
	c, csrf := e.login("operator", passwords["operator"])
	post := func(action string, form url.Values) (string, string) {
		form.Set("csrf", csrf)
		resp, _ := e.post(c, self+"/"+action, form)
		return e.flashOf(c, resp)
	}
	// Only allowed transitions are offered.
	_, body := e.get(c, self)
	for _, st := range []string{"acknowledged", "investigating", "mitigated", "resolved"} {
		if !strings.Contains(body, `data-status="`+st+`"`) {
			t.Errorf("triggered incident lacks the %s button", st)
		}
	}
	if strings.Contains(body, `data-status="closed"`) || strings.Contains(body, `data-status="triggered"`) {
		t.Errorf("triggered incident offers a forbidden transition")
	}

	tests := []struct {
		action  string
		form    url.Values
		flash   string
		errText string
	}{
		{"handoff", url.Values{"team": {"soc"}, "note": {"  "}}, "", "note: a hand-off needs a note"},
		{"handoff", url.Values{"team": {"sec"}, "note": {"x"}}, "", "team must be noc or soc"},
		{"status", url.Values{"to": {"closed"}}, "", "cannot close a triggered incident"},
		{"status", url.Values{"to": {"acknowledged"}}, "Incident is now acknowledged.", ""},
		{"handoff", url.Values{"team": {"soc"}, "note": {"looks like an attack on sw1"}}, "Handed off to SOC.", ""},
		{"note", url.Values{"text": {"checking the ACLs"}}, "Note added.", ""},
		{"tasks", url.Values{"title": {"collect logs"}}, "Task added.", ""},
		{"observables", url.Values{"type": {"ip"}, "value": {"10.1.2.3"}, "tlp": {"red"}}, "Observable added.", ""},
		{"observables", url.Values{"type": {"ipv9"}, "value": {"x"}}, "", `unknown observable type "ipv9"`},
		{"postmortem", url.Values{"category": {"attack"}, "summary": {"x"}}, "", "a postmortem needs a resolved incident"},
		{"merge", url.Values{"into": {fmt.Sprint(id)}}, "", "cannot be merged into itself"},
		{"status", url.Values{"to": {"resolved"}}, "Incident is now resolved.", ""},
		{"postmortem", url.Values{"category": {"attack"}, "summary": {"ACL gap"}, "actions": {"close the gap"}}, "", `action items line 1`},
		{"postmortem", url.Values{"category": {"attack"}, "summary": {"ACL gap"}, "factors": {"old rule\n"}, "actions": {"close the gap | admin"}}, "Postmortem saved.", ""},
	}
	for _, tc := range tests {
		flash, msg := post(tc.action, tc.form)
		if !strings.Contains(flash, tc.flash) || (tc.flash == "" && flash != "") || !strings.Contains(msg, tc.errText) || (tc.errText == "" && msg != "") {
			t.Errorf("%s %v: flash %q error %q; want %q / %q", tc.action, tc.form, flash, msg, tc.flash, tc.errText)
		}
	}
	inc, _ := e.st.GetIncident(ctx, id)
	if inc.Team != alert.TeamSOC || inc.Handoffs != 1 || inc.Status != incident.StatusResolved {
		t.Errorf("incident after workflow: team %s handoffs %d status %s", inc.Team, inc.Handoffs, inc.Status)
	}
	tasks, _ := e.st.Tasks(ctx, id)
	if len(tasks) != 1 {
		t.Fatalf("tasks: %+v", tasks)
	}
	resp, _ := e.post(c, fmt.Sprintf("%s/tasks/%d", self, tasks[0].ID), url.Values{"csrf": {csrf}, "done": {"1"}})
	if flash, _ := e.flashOf(c, resp); flash != "Done: collect logs" {
		t.Errorf("task done flash %q", flash)
	}
	_, body = e.get(c, self)
	for _, s := range []string{"handed from noc to soc: looks like an attack on sw1", "checking the ACLs", "10.1.2.3", "ACL gap", `id="postmortem"`, `data-status="closed"`, "checked"} {
		if !strings.Contains(body, s) {
			t.Errorf("detail page lacks %q", s)
		}
	}
	assertSafeHTML(t, self, body)
	// The board shows it in the SOC column set and in neither after filter.
	if _, body := e.get(c, "/incidents?team=soc"); !strings.Contains(body, fmt.Sprintf(`data-incident="%d"`, id)) {
		t.Errorf("SOC board lacks the handed-off incident")
	}
	if _, body := e.get(c, "/incidents?team=noc"); strings.Contains(body, fmt.Sprintf(`data-incident="%d"`, id)) {
		t.Errorf("NOC board still shows the handed-off incident")
	}
}

// TestViewerCannotAct: a viewer sees no action buttons on the new pages
// and every POST is 403 and changes nothing.
func TestViewerCannotAct(t *testing.T) {
	e := newEnv(t)
	o := e.fire("cpu hot", alert.TeamNOC, "high", nil)
	c, csrf := e.login("viewer", passwords["viewer"])
	for _, p := range []string{"/soc", fmt.Sprintf("/incidents/%d", o.IncidentID)} {
		_, body := e.get(c, p)
		for _, s := range []string{`action="/soc/action"`, `action="/incidents/`, `name="ids"`, "Hand off", "Acknowledge</button>"} {
			if strings.Contains(body, s) {
				t.Errorf("viewer sees %q on %s", s, p)
			}
		}
	}
	for _, p := range []string{"/soc/action", "/soc/alerts/1/silence", "/incidents/1/status", "/incidents/1/handoff",
		"/incidents/1/note", "/incidents/1/tasks", "/incidents/1/tasks/1", "/incidents/1/merge", "/incidents/1/postmortem",
		"/incidents/1/observables", "/incidents/1/escalate", "/incidents/1/assign"} {
		resp, _ := e.post(c, p, url.Values{"csrf": {csrf}, "action": {"ack"}, "ids": {"1"}, "to": {"acknowledged"}, "team": {"soc"}, "note": {"x"}, "text": {"x"}})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("viewer POST %s: %d, want 403", p, resp.StatusCode)
		}
	}
	if resp, _ := e.get(c, "/soc/alerts/1/silence"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer silence form: %d", resp.StatusCode)
	}
	inc, _ := e.st.GetIncident(context.Background(), o.IncidentID)
	if inc.Status != incident.StatusTriggered || inc.Team != alert.TeamNOC {
		t.Errorf("viewer changed the incident: %+v", inc)
	}
	_ = auth.RoleViewer
}
