package config

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

// lines joins its arguments with newlines so test inputs show their line
// numbers at a glance.
func lines(l ...string) string { return strings.Join(l, "\n") + "\n" }

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"syntax", lines("server:", "  listen: [", ""), "nocsoc.yaml:3: did not find expected node content"},
		{"tab indentation", lines("server:", "\tlisten: x"), "nocsoc.yaml:2: found character that cannot start any token (tabs are not allowed in YAML indentation; use spaces)"},
		{"not a mapping", lines("- a", "- b"), "nocsoc.yaml:1: the top level must be a mapping with server, checks and maintenance, got a list"},
		{"scalar document", lines("hello"), `nocsoc.yaml:1: the top level must be a mapping with server, checks and maintenance, got "hello"`},
		{"two documents", lines("server: {}", "---", "checks: []"), "nocsoc.yaml:2: only one YAML document is allowed"},
		{"unknown top-level key", lines("server: {}", "chekcs: []"), `nocsoc.yaml:2: field "chekcs" not found in the top level (server, checks, maintenance, alerting, inputs, detection, events) (did you mean "checks"?)`},
		{"duplicate top-level key", lines("server: {}", "server: {}"), "nocsoc.yaml:2: server: duplicate key (first defined at line 1)"},
		{"duplicate nested key", lines("checks:", "  - name: a", "    type: push", "    name: b"), "nocsoc.yaml:4: checks[0].name: duplicate key (first defined at line 2)"},
		{"non-scalar key", lines("? [a]", ": 1"), `nocsoc.yaml:1: mapping keys must be plain strings, got a list`},

		// server
		{"server not a mapping", lines("server: 8080"), `nocsoc.yaml:1: server: must be a mapping, got "8080"`},
		{"server unknown key", lines("server:", "  listn: :80"), `nocsoc.yaml:2: server: field "listn" not found in server (did you mean "listen"?)`},
		{"server unknown key far off", lines("server:", "  colour: blue"), `nocsoc.yaml:2: server: field "colour" not found in server`},
		{"listen not host:port", lines("server:", "  data_dir: /x", "  listen: localhost"), `nocsoc.yaml:3: server.listen: "localhost" is not host:port`},
		{"listen bad port", lines("server:", "  listen: 127.0.0.1:99999"), `nocsoc.yaml:2: server.listen: port "99999" is not a number from 0 to 65535`},
		{"workers wrong type", lines("server:", "  workers: many"), `nocsoc.yaml:2: server.workers: must be an integer, got "many"`},
		{"workers float", lines("server:", "  workers: 1.5"), `nocsoc.yaml:2: server.workers: must be an integer, got "1.5"`},
		{"workers negative", lines("server:", "  workers: -1"), "nocsoc.yaml:2: server.workers: must not be negative"},
		{"flap window negative", lines("server:", "  flap_window: -5m"), "nocsoc.yaml:2: server.flap_window: must not be negative"},
		{"flap threshold negative", lines("server:", "  flap_threshold: -2"), "nocsoc.yaml:2: server.flap_threshold: must not be negative"},
		{"retention bad duration", lines("server:", "  retention: 90d"), `nocsoc.yaml:2: server.retention: must be a duration like "30s" or "1h30m", got "90d"`},
		{"retention too short", lines("server:", "  retention: 10m"), "nocsoc.yaml:2: server.retention: must be at least 1h"},
		{"public url relative", lines("server:", "  public_url: noc.example.com"), `nocsoc.yaml:2: server.public_url: "noc.example.com" must be an absolute http:// or https:// URL`},
		{"eventstore memory limit", lines("server:", "  eventstore:", "    memory_limit: lots"), `nocsoc.yaml:3: server.eventstore.memory_limit: "lots" must be a size like 512MB or 2GiB`},
		{"eventstore checkpoint threshold", lines("server:", "  eventstore:", "    checkpoint_threshold: 10%"), `nocsoc.yaml:3: server.eventstore.checkpoint_threshold: "10%" must be a size like 256MB or 1GiB`},
		{"eventstore threads negative", lines("server:", "  eventstore:", "    threads: -1"), "nocsoc.yaml:3: server.eventstore.threads: must not be negative"},
		{"eventstore load_rows negative", lines("server:", "  eventstore:", "    load_rows: -5"), "nocsoc.yaml:3: server.eventstore.load_rows: must be between 0 (default) and 1048576"},
		{"eventstore max_backlog too large", lines("server:", "  eventstore:", "    max_backlog: 100000000"), "nocsoc.yaml:3: server.eventstore.max_backlog: must be between 0 (default) and 67108864"},
		{"eventstore search_wait too long", lines("server:", "  eventstore:", "    search_wait: 1h"), "nocsoc.yaml:3: server.eventstore.search_wait: must be between 0 (default) and 10m"},
		{"eventstore search_wait negative", lines("server:", "  eventstore:", "    search_wait: -1s"), "nocsoc.yaml:3: server.eventstore.search_wait: must be between 0 (default) and 10m"},
		{"eventstore unknown key", lines("server:", "  eventstore:", "    memory: 1GB"), `nocsoc.yaml:3: server.eventstore: field "memory" not found in server.eventstore`},
		{"tls cert without key", lines("server:", "  tls_cert: /c.pem"), "nocsoc.yaml:2: server.tls_cert: tls_key must be set as well"},
		{"tls key without cert", lines("server:", "  tls_key: /k.pem"), "nocsoc.yaml:2: server.tls_key: tls_cert must be set as well"},

		// checks: shape and types
		{"checks not a list", lines("checks:", "  web: {}"), "nocsoc.yaml:1: checks: must be a list, got a mapping"},
		{"check not a mapping", lines("checks:", "  - web"), `nocsoc.yaml:2: checks[0]: must be a mapping, got "web"`},
		{"check unknown key", lines("checks:", "  - name: web", "    type: tcp", "    target: a:1", "", "    intervl: 30s"), `nocsoc.yaml:6: checks[0]: field "intervl" not found in check (did you mean "interval"?)`},
		{"check provisioned key refused", lines("checks:", "  - name: web", "    type: push", "    provisioned: true"), `nocsoc.yaml:4: checks[0]: field "provisioned" not found in check`},
		{"interval wrong type", lines("checks:", "  - name: web", "    type: tcp", "    target: a:1", "    interval: often"), `nocsoc.yaml:5: checks[0].interval: must be a duration like "30s" or "1h30m", got "often"`},
		{"interval is a list", lines("checks:", "  - name: web", "    type: tcp", "    interval: [1s]"), `nocsoc.yaml:4: checks[0].interval: must be a duration like "30s" or "1h30m", got a list`},
		{"labels wrong type", lines("checks:", "  - name: web", "    type: push", "    labels: prod"), `nocsoc.yaml:4: checks[0].labels: must be a mapping, got "prod"`},
		{"label value a list", lines("checks:", "  - name: web", "    type: push", "    labels:", "      env: [prod]"), `nocsoc.yaml:5: checks[0].labels.env: must be a string, got a list`},
		{"depends_on not a list", lines("checks:", "  - name: web", "    type: push", "    depends_on: db"), `nocsoc.yaml:4: checks[0].depends_on: must be a list, got "db"`},
		{"nested unknown key", lines("checks:", "  - name: web", "    type: http", "    target: http://a/", "    http:", "      expect_staus: [200]"), `nocsoc.yaml:6: checks[0].http: field "expect_staus" not found in http options (did you mean "expect_status"?)`},
		{"nested list element type", lines("checks:", "  - name: web", "    type: http", "    target: http://a/", "    http:", "      expect_status:", "        - 200", "        - ok"), `nocsoc.yaml:8: checks[0].http.expect_status[1]: must be an integer, got "ok"`},
		{"bool wrong type", lines("checks:", "  - name: web", "    type: push", "    disabled: maybe"), `nocsoc.yaml:4: checks[0].disabled: must be true or false, got "maybe"`},

		// checks: values (check.Spec.Validate), placed on the field's line
		{"negative interval", lines("server: {}", "checks:", "  - name: a", "    type: tcp", "    target: a:1", "  - name: b", "    type: tcp", "    target: b:1", "  - name: c", "    type: tcp", "    target: c:1", "  - name: web", "    type: tcp", "    target: a:1", "    interval: -30s"), "nocsoc.yaml:15: checks[3].interval: must not be negative"},
		{"interval too short", lines("checks:", "  - name: web", "    type: tcp", "    target: a:1", "    interval: 10ms"), "nocsoc.yaml:5: checks[0].interval: must be at least 1s"},
		{"missing name", lines("checks:", "  - type: push", "    interval: 1m"), "nocsoc.yaml:2: checks[0].name: is required"},
		{"empty name", lines("checks:", "  - type: push", `    name: ""`), "nocsoc.yaml:3: checks[0].name: is required"},
		{"bad name", lines("checks:", "  - type: push", `    name: "web server"`), `nocsoc.yaml:3: checks[0].name: "web server" must be 1-128 letters, digits, '.', '_' or '-'`},
		{"unknown type", lines("checks:", "  - name: web", "    type: ftp"), `nocsoc.yaml:3: checks[0].type: unknown check type "ftp" (one of http, tcp, icmp, dns, tls, smtp, push, mail_posture)`},
		{"missing target", lines("checks:", "  - name: web", "    type: tcp"), "nocsoc.yaml:2: checks[0].target: is required for a tcp check"},
		{"bad severity", lines("checks:", "  - name: web", "    type: push", "    severity: urgent"), `nocsoc.yaml:4: checks[0].severity: unknown severity "urgent" (one of critical, high, medium, low, info)`},
		{"negative fail threshold", lines("checks:", "  - name: web", "    type: push", "    fail_threshold: -1"), "nocsoc.yaml:4: checks[0].fail_threshold: must not be negative"},
		{"wrong options block", lines("checks:", "  - name: web", "    type: tcp", "    target: a:1", "    http: {}"), `nocsoc.yaml:5: checks[0].http: options block "http" does not apply to a tcp check`},
		{"bad status code", lines("checks:", "  - name: web", "    type: http", "    target: http://a/", "    http:", "      expect_status:", "        - 200", "        - 999"), "nocsoc.yaml:8: checks[0].http.expect_status[1]: 999 is not an HTTP status code"},
		{"json path missing", lines("checks:", "  - name: web", "    type: http", "    target: http://a/", "    http:", "      json:", "        - equals: ok"), "nocsoc.yaml:7: checks[0].http.json[0].path: is required"},
		{"self dependency", lines("checks:", "  - name: web", "    type: push", "    depends_on: [db, web]"), "nocsoc.yaml:4: checks[0].depends_on[1]: a check cannot depend on itself"},

		// checks: the set
		{"duplicate check name", lines("checks:", "  - name: web", "    type: push", "  - type: push", "    name: web"), `nocsoc.yaml:5: checks[1].name: duplicate check name "web" (first defined at line 2)`},
		{"unknown dependency", lines("checks:", "  - name: db", "    type: push", "  - name: web", "    type: push", "    depends_on:", "      - db", "      - cache"), `nocsoc.yaml:8: checks[1].depends_on[1]: check "cache" does not exist`},
		{"dependency cycle", lines("checks:", "  - name: a", "    type: push", "    depends_on: [c]", "  - name: b", "    type: push", "    depends_on: [a]", "  - name: c", "    type: push", "    depends_on: [b]"), "nocsoc.yaml:4: checks[0].depends_on: dependency cycle: a -> c -> b -> a"},

		// maintenance
		{"maintenance not a list", lines("maintenance: weekly"), `nocsoc.yaml:1: maintenance: must be a list, got "weekly"`},
		{"window unknown key", lines("maintenance:", "  - name: w", "    duration: 1h", "    schedule: 0 2 * * 0", "    labels: {env: prod}", "    timezon: UTC"), `nocsoc.yaml:6: maintenance[0]: field "timezon" not found in maintenance window (did you mean "timezone"?)`},
		{"window name missing", lines("maintenance:", "  - duration: 1h", "    schedule: 0 2 * * 0", "    labels: {env: prod}"), "nocsoc.yaml:2: maintenance[0].name: is required"},
		{"window duration missing", lines("maintenance:", "  - name: w", "    schedule: 0 2 * * 0", "    labels: {env: prod}"), "nocsoc.yaml:2: maintenance[0].duration: is required"},
		{"window duration negative", lines("maintenance:", "  - name: w", "    duration: -1h", "    schedule: 0 2 * * 0", "    labels: {env: prod}"), "nocsoc.yaml:3: maintenance[0].duration: must be positive"},
		{"window duration bad", lines("maintenance:", "  - name: w", "    duration: 4 hours"), `nocsoc.yaml:3: maintenance[0].duration: must be a duration like "30s" or "1h30m", got "4 hours"`},
		{"window without start or schedule", lines("maintenance:", "  - name: w", "    duration: 1h", "    labels: {env: prod}"), "nocsoc.yaml:2: maintenance[0].start: is required for a one-off window (no schedule)"},
		{"window without target", lines("maintenance:", "  - name: w", "    duration: 1h", "    schedule: 0 2 * * 0"), "nocsoc.yaml:2: maintenance[0].checks: a window needs checks or labels to apply to"},
		{"window bad start", lines("maintenance:", "  - name: w", "    duration: 1h", "    start: next sunday"), `nocsoc.yaml:4: maintenance[0].start: must be a timestamp like 2025-06-01T02:00:00Z, got "next sunday"`},
		{"window bad time zone", lines("maintenance:", "  - name: w", "    duration: 1h", "    schedule: 0 2 * * 0", "    checks: [web]", "    timezone: Mars/Olympus"), `nocsoc.yaml:6: maintenance[0].timezone: unknown time zone "Mars/Olympus"`},
		{"window until before start", lines("maintenance:", "  - name: w", "    duration: 1h", "    start: 2030-01-02T00:00:00Z", "    until: 2030-01-01T00:00:00Z", "    checks: [web]"), "nocsoc.yaml:5: maintenance[0].until: must be after start"},
		{"duplicate window name", lines("maintenance:", "  - {name: w, duration: 1h, schedule: 0 2 * * 0, checks: [a]}", "  - {name: w, duration: 1h, schedule: 0 3 * * 0, checks: [a]}"), `nocsoc.yaml:3: maintenance[1].name: duplicate window name "w" (first defined at line 2)`},

		// several problems are all reported, in line order
		{"several errors", lines("maintenance:", "  - name: w", "checks:", "  - name: a", "    type: nope", "server:", "  workers: x"),
			"nocsoc.yaml:2: maintenance[0].duration: is required\n" +
				`nocsoc.yaml:5: checks[0].type: unknown check type "nope" (one of http, tcp, icmp, dns, tls, smtp, push, mail_posture)` + "\n" +
				`nocsoc.yaml:7: server.workers: must be an integer, got "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load("nocsoc.yaml", tt.src)
			if err == nil {
				t.Fatalf("Load succeeded, want error %q", tt.want)
			}
			if c != nil {
				t.Errorf("Load returned a config with its error")
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error\n got: %s\nwant: %s", got, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) || e.File != "nocsoc.yaml" || e.Line == 0 {
				t.Errorf("errors.As(*Error) = %+v, want a located *Error", e)
			}
		})
	}
}

func TestLoadDefaults(t *testing.T) {
	want := Server{
		Listen: "127.0.0.1:8080", DataDir: "./nocsoc-data", PublicURL: "http://127.0.0.1:8080",
		Workers: 256, FlapWindow: check.Duration(10 * time.Minute), FlapThreshold: 5,
		EventStore: EventStore{MemoryLimit: "384MB", Threads: 2},
		Retention:  check.Duration(90 * 24 * time.Hour),
	}
	tests := []struct {
		name string
		src  string
		want Server
	}{
		{"empty file", "", want},
		{"only comments", "# nothing yet\n", want},
		{"null server", "server:\n", want},
		{"empty server", "server: {}\nchecks: []\nmaintenance:\n", want},
		{"wildcard listen", "server: {listen: ':9090'}", func() Server {
			s := want
			s.Listen, s.PublicURL = ":9090", "http://localhost:9090"
			return s
		}()},
		{"tls public url", "server: {listen: '0.0.0.0:8443', tls_cert: c.pem, tls_key: k.pem, eventstore: {threads: 4}}", func() Server {
			s := want
			s.Listen, s.PublicURL, s.TLSCert, s.TLSKey = "0.0.0.0:8443", "https://localhost:8443", "c.pem", "k.pem"
			s.EventStore.Threads = 4
			return s
		}()},
		{"public url trailing slash", "server: {public_url: 'https://noc.example.com/'}", func() Server {
			s := want
			s.PublicURL = "https://noc.example.com"
			return s
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load("nocsoc.yaml", tt.src)
			if err != nil {
				t.Fatal(err)
			}
			if c.Server != tt.want {
				t.Errorf("server\n got: %+v\nwant: %+v", c.Server, tt.want)
			}
			if len(c.Checks) != 0 || len(c.Maintenance) != 0 || c.Path != "" {
				t.Errorf("got checks %v, windows %v, path %q; want none", c.Checks, c.Maintenance, c.Path)
			}
		})
	}
	if d := Default(); d.Server != want || d.Checks != nil || d.Maintenance != nil {
		t.Errorf("Default() = %+v, want server %+v and nothing else", d, want)
	}
}

func TestLoadChecksNormalizedAndProvisioned(t *testing.T) {
	src := lines(
		"checks:",
		"  - name: web",
		"    type: http",
		"    target: http://127.0.0.1:8080/",
		"    interval: 5s",
		"  - name: beat",
		"    type: push",
		"maintenance:",
		"  - {name: w, duration: 1h, schedule: 0 2 * * 0, labels: {env: prod}}",
	)
	c, err := Load("nocsoc.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Checks) != 2 {
		t.Fatalf("got %d checks, want 2", len(c.Checks))
	}
	web, beat := c.Checks[0], c.Checks[1]
	if !web.Provisioned || !beat.Provisioned {
		t.Errorf("checks not marked provisioned: %v %v", web.Provisioned, beat.Provisioned)
	}
	// Normalize caps the default timeout at the interval and adds options blocks.
	if web.Timeout.D() != 5*time.Second || web.Severity != "high" || web.FailThreshold != 1 || web.HTTP == nil {
		t.Errorf("web not normalized: %+v", web)
	}
	if beat.Interval.D() != time.Minute || beat.Push == nil {
		t.Errorf("beat not normalized: %+v", beat)
	}
	if len(c.Maintenance) != 1 || !c.Maintenance[0].Provisioned || c.Maintenance[0].Duration.D() != time.Hour {
		t.Errorf("windows = %+v, want one provisioned 1h window", c.Maintenance)
	}
}

func TestLoadMergeKeys(t *testing.T) {
	src := lines(
		"checks:",
		"  - &base {name: a, type: tcp, target: 'a:1', interval: 30s, severity: low}",
		"  - <<: *base",
		"    name: b",
		"    severity: critical",
	)
	c, err := Load("nocsoc.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	b := c.Checks[1]
	if b.Name != "b" || b.Target != "a:1" || b.Interval.D() != 30*time.Second || b.Severity != "critical" {
		t.Errorf("merged check = %+v, want b inheriting target and interval, overriding severity", b)
	}
}

func TestLoadFull(t *testing.T) {
	c, err := LoadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != "testdata/full.yaml" {
		t.Errorf("Path = %q", c.Path)
	}
	names := make([]string, len(c.Checks))
	types := map[string]bool{}
	for i, s := range c.Checks {
		names[i] = s.Name
		types[s.Type] = true
		if !s.Provisioned {
			t.Errorf("check %s not provisioned", s.Name)
		}
	}
	wantNames := []string{"db", "web", "redis", "gateway", "shop-dns", "shop-cert", "mail", "nightly-backup", "legacy-ftp", "mail-posture"}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("checks = %v, want %v", names, wantNames)
	}
	for _, typ := range check.Types {
		if !types[typ] {
			t.Errorf("full example has no %s check", typ)
		}
	}
	web := c.Checks[1]
	if web.Labels["env"] != "prod" || web.Severity != "critical" || web.FailThreshold != 3 ||
		web.HTTP.TLSVerify == nil || *web.HTTP.TLSVerify || len(web.HTTP.JSON) != 2 || web.HTTP.JSON[1].Path != "$.checks[0].healthy" {
		t.Errorf("web = %+v, http = %+v", web, web.HTTP)
	}
	if len(c.Maintenance) != 3 || c.Maintenance[0].TimeZone != "Europe/Berlin" || c.Maintenance[2].Until == nil {
		t.Errorf("maintenance = %+v", c.Maintenance)
	}
	if c.Server.TLSCert == "" || c.Server.EventStore.MemoryLimit != "512MB" {
		t.Errorf("server = %+v", c.Server)
	}
}

func TestLoadFileErrors(t *testing.T) {
	if _, err := LoadFile("testdata/does-not-exist.yaml"); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadFile(missing) = %v, want a not-exist error", err)
	}
	path := t.TempDir() + "/bad.yaml"
	if err := os.WriteFile(path, []byte("server:\n  workers: -3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(path)
	if want := path + ":2: server.workers: must not be negative"; err == nil || err.Error() != want {
		t.Errorf("LoadFile(bad) = %v, want %s", err, want)
	}
}

func TestRedacted(t *testing.T) {
	c, err := LoadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	token := "9f2c7a41d8e35b60c4a1f7e2d9b83c56"
	out := c.Redacted()
	if strings.Contains(out, token) {
		t.Errorf("Redacted output contains the push token:\n%s", out)
	}
	if !strings.Contains(out, "token: "+Secret) {
		t.Errorf("Redacted output lacks %q:\n%s", "token: "+Secret, out)
	}
	if c.Checks[7].Push.Token != token {
		t.Errorf("Redacted changed the config itself: token = %q", c.Checks[7].Push.Token)
	}
	// Channel secrets and SMTP passwords are secrets too.
	for _, secret := range []string{"3b7e1c9a0d5f42e8b6a1c7d9e2f40a5b", "s3cret-smtp-password"} {
		if strings.Contains(out, secret) {
			t.Errorf("Redacted output contains %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "secret: "+Secret) || !strings.Contains(out, "password: "+Secret) {
		t.Errorf("Redacted output lacks the redacted channel secret or password:\n%s", out)
	}
	if c.Alerting.Channels[0].Secret == Secret || c.Alerting.Channels[3].Email.Password == Secret {
		t.Error("Redacted changed the config's channels")
	}

	// The output is a config file in its own right and loads to the same
	// values, apart from the redacted secret.
	again, err := Load("redacted.yaml", out)
	if err != nil {
		t.Fatalf("Redacted output does not load: %v\n%s", err, out)
	}
	c.Checks[7].Push.Token = Secret
	c.Alerting.Channels[0].Secret = Secret
	c.Alerting.Channels[3].Email.Password = Secret
	c.Path, c.size, c.sum = "", 0, [32]byte{}
	if !reflect.DeepEqual(again, c) {
		t.Errorf("round trip differs\n got: %+v\nwant: %+v", again, c)
	}
}

// TestLoadWindowSchedule relies on maintenance.Window's own Validate for
// cron syntax; only the position is asserted, the wording is that package's.
func TestLoadWindowSchedule(t *testing.T) {
	src := lines("maintenance:", "  - name: w", "    duration: 1h", "    schedule: 0 25 * * *", "    checks: [web]")
	_, err := Load("nocsoc.yaml", src)
	if want := "nocsoc.yaml:4: maintenance[0].schedule: "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Load = %v, want an error starting %q", err, want)
	}
}

func BenchmarkLoadFull(b *testing.B) {
	src, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load("full.yaml", string(src)); err != nil {
			b.Fatal(err)
		}
	}
}
