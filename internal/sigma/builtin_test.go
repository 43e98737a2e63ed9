package sigma

import (
	"fmt"
	"testing"
	"time"
)

func TestBuiltinRules(t *testing.T) {
	rules, errs := LoadDir("../../rules/builtin")
	if len(errs) > 0 {
		t.Fatalf("load: %v", errs)
	}
	eng, errs := Compile(rules, nil)
	if len(errs) > 0 {
		t.Fatalf("compile: %v", errs)
	}
	for _, r := range rules {
		if r.Author != "nocsoc" {
			t.Errorf("%s: author %q", r.Path, r.Author)
		}
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sshd := func(outcome, ip, user string) MapEvent {
		return MapEvent{"event.dataset": "sshd", "process.name": "sshd", "host.name": "web-1",
			"event.outcome": outcome, "source.ip": ip, "user.name": user,
			"message": fmt.Sprintf("Failed password for %s from %s port 22 ssh2", user, ip)}
	}
	fired := map[string][]Match{}
	at := t0
	feed := func(e MapEvent) {
		at = at.Add(5 * time.Second)
		for _, m := range eng.Match(e, at) {
			fired[m.Rule.Title] = append(fired[m.Rule.Title], m)
		}
	}
	// 9 failures: below the brute force threshold.
	for i := 0; i < 9; i++ {
		feed(sshd("failure", "198.51.100.7", "root"))
	}
	if len(fired) != 0 {
		t.Fatalf("fired early: %v", fired)
	}
	feed(sshd("failure", "198.51.100.7", "root"))
	if m := fired["SSH Brute Force"]; len(m) != 1 || m[0].GroupKey != "source.ip=198.51.100.7" || len(m[0].Events) != 10 {
		t.Fatalf("brute force: %+v", fired)
	}
	// A success from another address does not complete the chain.
	feed(sshd("success", "192.0.2.1", "bob"))
	if len(fired["SSH Brute Force Followed by Successful Login"]) != 0 {
		t.Fatal("chain completed from another source")
	}
	feed(sshd("success", "198.51.100.7", "root"))
	if m := fired["SSH Brute Force Followed by Successful Login"]; len(m) != 1 || m[0].Rule.Level != "critical" {
		t.Fatalf("brute force + success: %+v", fired)
	}
	// Password spraying: 5 users from one address.
	for _, u := range []string{"a", "b", "c", "d", "e"} {
		feed(sshd("failure", "203.0.113.9", u))
	}
	if m := fired["Password Spraying"]; len(m) != 1 || m[0].GroupKey != "source.ip=203.0.113.9" {
		t.Fatalf("spraying: %+v", fired["Password Spraying"])
	}
	// Web scanning: 30 404s in well under a minute.
	for i := 0; i < 30; i++ {
		at = at.Add(time.Second)
		for _, m := range eng.Match(MapEvent{"event.dataset": "nginx.access", "source.ip": "192.0.2.50", "host.name": "web-1",
			"http.response.status_code": 404.0, "url.path": fmt.Sprintf("/admin%d.php", i)}, at) {
			fired[m.Rule.Title] = append(fired[m.Rule.Title], m)
		}
	}
	if len(fired["Web Scanning"]) != 1 {
		t.Fatalf("web scanning: %+v", fired["Web Scanning"])
	}
	feed(MapEvent{"process.name": "usermod", "event.dataset": "usermod", "host.name": "web-1",
		"message": "add 'mallory' to group 'sudo'"})
	if len(fired["New Privileged Linux Account"]) != 1 {
		t.Fatalf("privileged account: %+v", fired)
	}
	for title, ms := range fired {
		switch title {
		case "SSH Authentication Failure", "SSH Authentication Success", "Linux Authentication Failure", "Host Event", "Web Client Error Response":
			t.Errorf("base rule %q raised %d matches on its own", title, len(ms))
		}
	}
	// Silence: web-1 stops; Tick 15 minutes after its last event fires.
	if ms := eng.Tick(at.Add(14 * time.Minute)); len(ms) != 0 {
		t.Errorf("silence too early: %+v", ms)
	}
	ms := eng.Tick(at.Add(15 * time.Minute))
	if len(ms) != 1 || ms[0].GroupKey != "host.name=web-1" {
		t.Errorf("silence: %+v", ms)
	}
}
