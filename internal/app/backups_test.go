package app_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/nocsoc/nocsoc/internal/app"
)

// TestBackupsFIMMailAgent runs the real agent binary against the real
// server: `nocsoc-agent run --job` wrapping real commands (success, failure
// with its exit code passed on), the reports reaching the server through
// the agent's spool and batches, judged against a job made through the
// API, the status board and alerts; file integrity events for files in a
// temp dir; and the mail queue metric from a fake postqueue first on PATH.
func TestBackupsFIMMailAgent(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("/bin/sh is missing")
		}
		t.Skip("no /bin/sh: cannot run the wrapped backup commands")
	}
	bin := buildAgent(t)
	h := startOn(t, app.Options{DataDir: t.TempDir()}, "127.0.0.1:0")

	// Files watched by FIM, and a fake postqueue reporting two messages.
	watched := t.TempDir()
	for name, content := range map[string]string{"passwd": "root:x:0:0::/root:/bin/sh\n", "sudoers": "root ALL=(ALL) ALL\n"} {
		if err := os.WriteFile(filepath.Join(watched, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fakeBin := t.TempDir()
	if err := os.WriteFile(filepath.Join(fakeBin, "postqueue"), []byte("#!/bin/sh\necho '{\"queue_id\":\"A\"}'\necho '{\"queue_id\":\"B\"}'\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	stateDir := t.TempDir()
	var agentErr syncBuffer
	cmd := exec.Command(bin, "--server", h.url, "--enroll-token", h.enrollmentToken(), "--state", stateDir, "--interval", "100ms",
		"--inventory-interval", "1h", "--fim-paths", filepath.Join(watched, "*"), "--updates-interval", "-1s")
	cmd.Env = append(os.Environ(), "PATH="+fakeBin+":"+os.Getenv("PATH"))
	cmd.Stderr = &agentErr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	t.Cleanup(func() {
		if t.Failed() {
			_ = cmd.Process.Signal(syscall.SIGQUIT) // a goroutine dump helps to see where it hangs
			time.Sleep(time.Second)
			t.Logf("agent stderr:\n%s", agentErr.String())
		}
	})
	// The agent's first cycle collects the full inventory and compliance
	// facts, which can take minutes on a busy machine; later ones are fast.
	var ep endpointJSON
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if eps := h.endpoints(); len(eps) == 1 && eps[0].Status == "online" && eps[0].Batches >= 2 {
			ep = eps[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the agent to come online")
		}
		time.Sleep(100 * time.Millisecond) // poll interval, not a correctness wait
	}

	// Jobs through the API: bad input is refused and stores nothing.
	for _, tc := range []struct{ body, field string }{
		{`{"name":"nightly","endpoint_id":"` + ep.ID + `","schedule":"0 25 * * *"}`, "schedule"},
		{`{"name":"nightly","endpoint_id":"nope","schedule":"@daily"}`, "endpoint_id"},
		{`{"name":"night ly","endpoint_id":"` + ep.ID + `","schedule":"@daily"}`, "name"},
		{`{"name":"nightly","endpoint_id":"` + ep.ID + `","schedule":"@daily","max_size_drop":2}`, "max_size_drop"},
		{`{"name":"nightly","endpoint_id":"` + ep.ID + `","schedule":"@daily","grace":"soon"}`, "grace"},
	} {
		var e struct {
			Field string `json:"field"`
		}
		h.do("POST", "/api/v1/backups", tc.body, http.StatusBadRequest, &e)
		if e.Field != tc.field {
			t.Errorf("%s: field %q, want %q", tc.body, e.Field, tc.field)
		}
	}
	viewer := h.userToken("bkviewer", "viewer")
	h.doAs("bearer:"+viewer, "POST", "/api/v1/backups", `{"name":"x","endpoint_id":"`+ep.ID+`","schedule":"@daily"}`, http.StatusForbidden, nil)
	var job struct {
		ID    int64  `json:"id"`
		Grace string `json:"grace"`
	}
	h.do("POST", "/api/v1/backups", `{"name":"nightly","endpoint_id":"`+ep.ID+`","schedule":"0 2 * * *","grace":"2h","min_bytes":1000,"max_size_drop":0.5}`,
		http.StatusCreated, &job)
	if job.Grace != "2h0m0s" {
		t.Errorf("grace = %q", job.Grace)
	}
	var jobs struct {
		Jobs []struct{ ID int64 } `json:"jobs"`
	}
	h.do("GET", "/api/v1/backups", "", http.StatusOK, &jobs)
	if len(jobs.Jobs) != 1 {
		t.Fatalf("jobs = %+v", jobs)
	}

	// A successful backup of 5000 bytes, then a failing one: the wrapper
	// exits with the command's status.
	dump := filepath.Join(t.TempDir(), "dump.sql")
	runJob := func(script string) (int, string) {
		c := exec.Command(bin, "run", "--job", "nightly", "--state", stateDir, "--size", dump, "--", "/bin/sh", "-c", script)
		out, err := c.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatalf("agent run: %v", err)
		}
		return 0, string(out)
	}
	if code, out := runJob(`head -c 5000 /dev/zero > "` + dump + `"; echo dumped`); code != 0 || !strings.Contains(out, "dumped") {
		t.Fatalf("good backup: exit %d, output %q", code, out)
	}
	if code, out := runJob(`echo "pg_dump: connection refused" >&2; exit 4`); code != 4 || !strings.Contains(out, "connection refused") {
		t.Fatalf("failing backup: exit %d (want 4), output %q", code, out)
	}

	type runJSON struct {
		ExitCode   int      `json:"exit_code"`
		Bytes      int64    `json:"bytes"`
		OutputTail string   `json:"output_tail"`
		Problems   []string `json:"problems"`
	}
	var runs struct {
		Runs []runJSON `json:"runs"`
	}
	waitFor(t, "two backup runs on the server", func() bool {
		h.do("GET", fmt.Sprintf("/api/v1/backups/%d/runs", job.ID), "", http.StatusOK, &runs)
		return len(runs.Runs) == 2
	})
	if r := runs.Runs[0]; r.ExitCode != 4 || !strings.Contains(r.OutputTail, "connection refused") || len(r.Problems) != 1 || r.Problems[0] != "failed" {
		t.Errorf("newest run = %+v", r)
	}
	if r := runs.Runs[1]; r.ExitCode != 0 || r.Bytes != 5000 || len(r.Problems) != 0 {
		t.Errorf("first run = %+v", r)
	}
	var board struct {
		Jobs []struct {
			State    string `json:"state"`
			Hostname string `json:"hostname"`
			LastRun  *struct {
				ExitCode int `json:"exit_code"`
			} `json:"last_run"`
			LastSuccess *struct {
				Bytes int64 `json:"bytes"`
			} `json:"last_success"`
			NextDue *time.Time `json:"next_due"`
		} `json:"jobs"`
		Counts map[string]int `json:"counts"`
	}
	h.do("GET", "/api/v1/backups/status", "", http.StatusOK, &board)
	if len(board.Jobs) != 1 || board.Jobs[0].State != "failed" || board.Jobs[0].LastSuccess == nil || board.Jobs[0].LastSuccess.Bytes != 5000 ||
		board.Jobs[0].NextDue == nil || board.Counts["failed"] != 1 {
		t.Errorf("board = %+v", board)
	}
	failed := func() []alertJSON {
		var out []alertJSON
		for _, a := range h.alerts("status=firing") {
			if a.Labels["backup_job"] == "nightly" {
				out = append(out, a)
			}
		}
		return out
	}
	waitFor(t, "backup failed alert", func() bool { return len(failed()) == 1 })
	if a := failed()[0]; a.Team != "noc" || a.Labels["problem"] != "failed" || a.Labels["endpoint"] != ep.ID {
		t.Errorf("alert = %+v", a)
	}

	// A much smaller backup: NOC and SOC both hear of it.
	if code, _ := runJob(`head -c 1500 /dev/zero > "` + dump + `"`); code != 0 {
		t.Fatalf("small backup exit %d", code)
	}
	waitFor(t, "size drop alerts", func() bool {
		teams := map[string]bool{}
		for _, a := range failed() {
			if a.Labels["problem"] == "size_drop" {
				teams[a.Team] = true
			}
		}
		return teams["noc"] && teams["soc"] && len(failed()) == 2
	})
	// A good run resolves them all.
	if code, _ := runJob(`head -c 6000 /dev/zero > "` + dump + `"`); code != 0 {
		t.Fatalf("good backup exit %d", code)
	}
	waitFor(t, "alerts resolved by a good run", func() bool { return len(failed()) == 0 })

	// The job's changes are audited.
	h.do("PUT", fmt.Sprintf("/api/v1/backups/%d", job.ID), `{"name":"nightly","endpoint_id":"`+ep.ID+`","schedule":"30 3 * * *"}`, http.StatusOK, nil)
	var audit struct {
		Entries []struct {
			Action string `json:"action"`
		} `json:"entries"`
	}
	h.do("GET", "/api/v1/audit?target="+url.QueryEscape(fmt.Sprintf("backup_job:%d", job.ID)), "", http.StatusOK, &audit)
	if len(audit.Entries) != 2 {
		t.Errorf("audit entries for the job = %+v", audit)
	}

	// FIM: the first report was the baseline; a change now is an event.
	var files struct {
		Files []struct {
			Path   string `json:"path"`
			SHA256 string `json:"sha256"`
		} `json:"files"`
	}
	waitFor(t, "FIM baseline", func() bool {
		h.do("GET", "/api/v1/endpoints/"+ep.ID+"/files", "", http.StatusOK, &files)
		return len(files.Files) == 2
	})
	if n := len(bkEvents(h, "file.changed")) + len(bkEvents(h, "file.created")); n != 0 {
		t.Fatalf("baseline raised %d file events", n)
	}
	// Files are replaced by rename, as editors and package managers do, so
	// the agent never hashes a half-written file.
	replace := func(name, content string) {
		tmp := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(watched, name)); err != nil {
			t.Fatal(err)
		}
	}
	sudoers := "root ALL=(ALL) ALL\nevil ALL=(ALL) NOPASSWD: ALL\n"
	replace("sudoers", sudoers)
	replace("cron", "* * * * * root /tmp/x\n")
	deadline = time.Now().Add(60 * time.Second)
	for len(bkEvents(h, "file.changed")) == 0 || len(bkEvents(h, "file.created")) == 0 {
		if time.Now().After(deadline) {
			body := h.do("GET", "/api/v1/endpoints/"+ep.ID+"/files", "", http.StatusOK, nil)
			ev := h.do("GET", "/api/v1/events?q="+url.QueryEscape("event.category:file"), "", http.StatusOK, nil)
			t.Fatalf("no file.changed and file.created events; endpoint %+v\nfiles %s\nevents %s", h.endpoints(), body, ev)
		}
		time.Sleep(50 * time.Millisecond) // poll interval, not a correctness wait
	}
	sum := sha256.Sum256([]byte(sudoers))
	ev := bkEvents(h, "file.changed")[0]
	if ev["file.path"] != filepath.Join(watched, "sudoers") || ev["host.name"] != ep.Hostname || ev["event.category"] != "file" ||
		ev["file.hash.sha256"] != hex.EncodeToString(sum[:]) || ev["file.previous.hash.sha256"] == nil ||
		ev["file.hash.sha256"] == ev["file.previous.hash.sha256"] {
		t.Errorf("file.changed event = %v", ev)
	}
	if ev := bkEvents(h, "file.created")[0]; ev["file.path"] != filepath.Join(watched, "cron") {
		t.Errorf("file.created event = %v", ev)
	}

	// Mail queue metric from the fake postqueue.
	var metrics struct {
		Samples []struct {
			Value float64 `json:"value"`
		} `json:"samples"`
	}
	waitFor(t, "mail queue samples", func() bool {
		h.do("GET", "/api/v1/endpoints/"+ep.ID+"/metrics?name=mail.queue.messages", "", http.StatusOK, &metrics)
		return len(metrics.Samples) > 0
	})
	if metrics.Samples[0].Value != 2 {
		t.Errorf("mail.queue.messages = %v, want 2", metrics.Samples[0].Value)
	}

	if !strings.Contains(agentErr.String(), "agent running") {
		t.Logf("agent stderr:\n%s", agentErr.String())
	}
	h.do("DELETE", fmt.Sprintf("/api/v1/backups/%d", job.ID), "", http.StatusOK, nil)
	h.do("GET", fmt.Sprintf("/api/v1/backups/%d", job.ID), "", http.StatusNotFound, nil)
}

func bkEvents(h *harness, action string) []map[string]any {
	h.t.Helper()
	var out struct {
		Events []map[string]any `json:"events"`
	}
	h.do("GET", "/api/v1/events?q="+url.QueryEscape("event.action:"+action), "", http.StatusOK, &out)
	return out.Events
}

// bkZone is an in-process DNS server with changeable records.
type bkZone struct {
	mu  sync.Mutex
	txt map[string][]string
}

func (z *bkZone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	q := req.Question[0]
	var rrs []string
	switch {
	case q.Qtype == dns.TypeMX && q.Name == "corp.test.":
		rrs = []string{"corp.test. 60 IN MX 10 mx.corp.test."}
	case q.Qtype == dns.TypeA && q.Name == "mx.corp.test.":
		rrs = []string{"mx.corp.test. 60 IN A 192.0.2.25"}
	case q.Qtype == dns.TypeTXT:
		z.mu.Lock()
		for _, v := range z.txt[q.Name] {
			rrs = append(rrs, fmt.Sprintf("%s 60 IN TXT %q", q.Name, v))
		}
		z.mu.Unlock()
	}
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		m.Answer = append(m.Answer, rr)
	}
	w.WriteMsg(m)
}

func (z *bkZone) set(name string, v ...string) {
	z.mu.Lock()
	z.txt[name] = v
	z.mu.Unlock()
}

// TestMailPostureCheck runs a mail_posture check through the API against
// an in-process DNS server: healthy, then broken (NOC alert through the
// check pipeline), then changed records (SOC alert that stays until an
// operator resolves it).
func TestMailPostureCheck(t *testing.T) {
	z := &bkZone{txt: map[string][]string{
		"corp.test.":                 {"v=spf1 mx -all"},
		"_dmarc.corp.test.":          {"v=DMARC1; p=reject"},
		"mail._domainkey.corp.test.": {"v=DKIM1; k=rsa; p=dGVzdGtleQ=="},
	}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: z, NotifyStartedFunc: func() { close(started) }}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })

	h := startOn(t, app.Options{DataDir: t.TempDir()}, "127.0.0.1:0")
	h.do("POST", "/api/v1/checks", fmt.Sprintf(`{"name":"corp-mail","type":"mail_posture","target":"corp.test","interval":"1h",
		"mail_posture":{"resolver":%q,"dkim_selectors":["mail"]}}`, pc.LocalAddr().String()), http.StatusCreated, nil)
	h.do("POST", "/api/v1/checks", `{"name":"bad","type":"mail_posture","target":"http://corp.test"}`, http.StatusBadRequest, nil)
	c := h.waitState("corp-mail", "up")
	if c.Status.LastResult == nil || !c.Status.LastResult.OK {
		t.Fatalf("healthy domain: %+v", c.Status.LastResult)
	}

	socAlerts := func() []alertJSON {
		var out []alertJSON
		for _, a := range h.alerts("status=firing") {
			if a.Labels["alertname"] == "MailDNSRecordsChanged" {
				out = append(out, a)
			}
		}
		return out
	}
	if n := len(socAlerts()); n != 0 {
		t.Fatalf("baseline raised %d change alerts", n)
	}

	// The SPF record changes (still valid): the SOC hears of it.
	z.set("corp.test.", "v=spf1 mx ip4:203.0.113.0/24 -all")
	h.do("POST", "/api/v1/checks/corp-mail/run", "", http.StatusAccepted, nil)
	waitFor(t, "mail DNS change alert", func() bool { return len(socAlerts()) == 1 })
	if a := socAlerts()[0]; a.Team != "soc" || a.Origin != "human" || a.Labels["domain"] != "corp.test" {
		t.Errorf("change alert = %+v", a)
	}
	if c := h.waitState("corp-mail", "up"); !c.Status.LastResult.OK {
		t.Errorf("valid changed records failed the check: %+v", c.Status.LastResult)
	}

	// DMARC disappears: the check goes down (NOC) and, being a change
	// too, the open SOC alert is repeated, not duplicated.
	z.set("_dmarc.corp.test.")
	c = h.waitState("corp-mail", "down")
	if !strings.Contains(c.Status.LastResult.Error, "no DMARC record") {
		t.Errorf("down reason = %q", c.Status.LastResult.Error)
	}
	if n := len(socAlerts()); n != 1 {
		t.Errorf("change alerts = %d, want the one open alert", n)
	}
	var noc []alertJSON
	for _, a := range h.alerts("status=firing") {
		if a.Labels["check"] == "corp-mail" && a.Team == "noc" {
			noc = append(noc, a)
		}
	}
	if len(noc) != 1 {
		t.Errorf("NOC alerts for the down check = %+v", noc)
	}
}
