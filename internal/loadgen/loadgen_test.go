package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/config"
)

func TestChecksConfigLoads(t *testing.T) {
	tests := []struct {
		name string
		opts ConfigOptions
	}{
		{"one", ConfigOptions{Checks: 1, Target: "http://127.0.0.1:9900", Interval: time.Minute}},
		{"short interval, default timeout", ConfigOptions{Checks: 2, Target: "http://127.0.0.1:9900", Interval: 2 * time.Second}},
		{"trailing slash and timeout", ConfigOptions{Checks: 3, Target: "http://127.0.0.1:9900/", Interval: 30 * time.Second, Timeout: 2 * time.Second}},
		{"ten thousand", ConfigOptions{Checks: 10000, Target: "https://[::1]:8443/base", Interval: time.Minute, Timeout: 5 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteChecksConfig(&buf, tt.opts); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load("gen.yaml", buf.String())
			if err != nil {
				t.Fatalf("generated config does not load: %v", err)
			}
			if len(cfg.Checks) != tt.opts.Checks {
				t.Fatalf("got %d checks, want %d", len(cfg.Checks), tt.opts.Checks)
			}
			base := strings.TrimSuffix(tt.opts.Target, "/")
			wantTimeout := tt.opts.Timeout
			if wantTimeout == 0 {
				wantTimeout = min(10*time.Second, tt.opts.Interval)
			}
			for i, c := range cfg.Checks {
				wantName, wantTarget := fmt.Sprintf("load-%d", i+1), fmt.Sprintf("%s/t/%d", base, i+1)
				if c.Name != wantName || c.Type != "http" || c.Target != wantTarget || c.Interval.D() != tt.opts.Interval || c.Timeout.D() != wantTimeout {
					t.Fatalf("check %d = %s %s %s every %s timeout %s; want %s http %s every %s timeout %s",
						i, c.Name, c.Type, c.Target, c.Interval, c.Timeout, wantName, wantTarget, tt.opts.Interval, wantTimeout)
				}
			}
		})
	}
}

func TestChecksConfigRejectsBadOptions(t *testing.T) {
	good := ConfigOptions{Checks: 10, Target: "http://127.0.0.1:9900", Interval: time.Minute}
	tests := []struct {
		name string
		edit func(*ConfigOptions)
		flag string
	}{
		{"zero checks", func(o *ConfigOptions) { o.Checks = 0 }, "checks"},
		{"too many checks", func(o *ConfigOptions) { o.Checks = MaxChecks + 1 }, "checks"},
		{"no target", func(o *ConfigOptions) { o.Target = "" }, "target"},
		{"ftp target", func(o *ConfigOptions) { o.Target = "ftp://127.0.0.1/" }, "target"},
		{"target with query", func(o *ConfigOptions) { o.Target = "http://127.0.0.1/?a=1" }, "target"},
		{"short interval", func(o *ConfigOptions) { o.Interval = 500 * time.Millisecond }, "interval"},
		{"negative timeout", func(o *ConfigOptions) { o.Timeout = -time.Second }, "timeout"},
		{"timeout above interval", func(o *ConfigOptions) { o.Timeout = 2 * time.Minute }, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good
			tt.edit(&o)
			var buf bytes.Buffer
			err := WriteChecksConfig(&buf, o)
			var fe *FlagError
			if !errors.As(err, &fe) || fe.Flag != tt.flag {
				t.Fatalf("err = %v, want a FlagError on --%s", err, tt.flag)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes for invalid options", buf.Len())
			}
		})
	}
}

// startTargets serves a Targets on a loopback port until the test ends.
func startTargets(t *testing.T) (*Targets, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg := NewTargets()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tg.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return tg, "http://" + ln.Addr().String()
}

func TestTargetsAnswer(t *testing.T) {
	tg, base := startTargets(t)
	for _, path := range []string{"/", "/t/1", "/t/9999", "/anything/else?x=1"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != `{"status":"ok"}` || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s = %d %q (%s)", path, resp.StatusCode, body, resp.Header.Get("Content-Type"))
		}
	}
	resp, err := http.Get(base + StatsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st TargetStats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Requests != 4 || st.Connections < 1 {
		t.Errorf("stats = %+v, want 4 requests (the stats request is not counted) and at least 1 connection", st)
	}
	if got := tg.Stats(); got.Requests != 4 {
		t.Errorf("Stats() = %+v", got)
	}
}

func TestRunProbesFreshConnections(t *testing.T) {
	tg, base := startTargets(t)
	r, err := RunProbes(context.Background(), DriveOptions{Target: base + "/t/1", Concurrency: 4, Duration: time.Minute, MaxProbes: 40})
	if err != nil {
		t.Fatal(err)
	}
	if r.Probes != 40 || r.OK != 40 || r.FirstError != "" {
		t.Fatalf("report = %+v, want 40 successful probes", r)
	}
	// nocsoc's prober opens a fresh connection for every probe.
	if st := tg.Stats(); st.Requests != 40 || st.Connections != 40 {
		t.Errorf("target saw %+v, want 40 requests on 40 connections", st)
	}
	if !strings.Contains(r.String(), "driver=nocsoc-prober concurrency=4 probes=40 ok=40 failed=0") {
		t.Errorf("String() = %s", r)
	}
}

func TestRunProbesCountsFailures(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }))
	defer srv.Close()
	r, err := RunProbes(context.Background(), DriveOptions{Target: srv.URL, Concurrency: 2, Duration: time.Minute, MaxProbes: 10})
	if err != nil {
		t.Fatal(err)
	}
	if r.Probes != 10 || r.OK != 0 || !strings.Contains(r.FirstError, "status 503") || r.Rate() != 0 {
		t.Errorf("report = %+v", r)
	}
}

func TestRunBlackbox(t *testing.T) {
	// A hand-written stand-in for blackbox_exporter: every third probe fails.
	var n atomic.Int64
	var badQuery atomic.Value
	exp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/probe" || q.Get("module") != "http_2xx" || q.Get("target") != "http://127.0.0.1:1/t/1?a=b" {
			badQuery.Store(r.URL.String())
		}
		success := 1
		if n.Add(1)%3 == 0 {
			success = 0
		}
		fmt.Fprintf(w, "# HELP probe_success Displays whether or not the probe was a success\n# TYPE probe_success gauge\nprobe_success %d\n", success)
	}))
	defer exp.Close()
	r, err := RunBlackbox(context.Background(), DriveOptions{Exporter: exp.URL, Target: "http://127.0.0.1:1/t/1?a=b", Concurrency: 3, Duration: time.Minute, MaxProbes: 30})
	if err != nil {
		t.Fatal(err)
	}
	if q := badQuery.Load(); q != nil {
		t.Errorf("exporter got %s", q)
	}
	if r.Probes != 30 || r.OK != 20 || r.FirstError != "probe_success is not 1" {
		t.Errorf("report = %+v, want 30 probes, 20 ok", r)
	}
}

func TestDriveRejectsBadOptions(t *testing.T) {
	good := DriveOptions{Target: "http://127.0.0.1:1/", Exporter: "http://127.0.0.1:2", Concurrency: 1, Duration: time.Second}
	tests := []struct {
		name string
		edit func(*DriveOptions)
		flag string
	}{
		{"no target", func(o *DriveOptions) { o.Target = "" }, "target"},
		{"no exporter", func(o *DriveOptions) { o.Exporter = "127.0.0.1:2" }, "exporter"},
		{"zero concurrency", func(o *DriveOptions) { o.Concurrency = 0 }, "concurrency"},
		{"zero duration", func(o *DriveOptions) { o.Duration = 0 }, "duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good
			tt.edit(&o)
			_, err := RunBlackbox(context.Background(), o)
			var fe *FlagError
			if !errors.As(err, &fe) || fe.Flag != tt.flag {
				t.Errorf("err = %v, want a FlagError on --%s", err, tt.flag)
			}
		})
	}
}

func TestRunSubcommands(t *testing.T) {
	tests := []struct {
		args    []string
		usage   bool
		wantOut string
	}{
		{args: nil, usage: true},
		{args: []string{"nope"}, usage: true},
		{args: []string{"checks-config", "--checks", "x"}, usage: true},
		{args: []string{"checks-config", "--target", "http://127.0.0.1:9", "extra"}, usage: true},
		{args: []string{"checks-config", "--checks", "0", "--target", "http://127.0.0.1:9"}, usage: true},
		{args: []string{"probes", "--target", "http://127.0.0.1:9", "--concurrency", "0"}, usage: true},
		{args: []string{"checks-config", "--checks", "2", "--target", "http://127.0.0.1:9", "--interval", "30s"}, wantOut: "target: \"http://127.0.0.1:9/t/2\"\n    interval: 30s\n"},
		{args: []string{"help"}, wantOut: "nocsoc loadgen targets"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			err := Run(context.Background(), tt.args, &out, io.Discard)
			var ue UsageError
			if errors.As(err, &ue) != tt.usage {
				t.Fatalf("err = %v, usage error wanted: %v", err, tt.usage)
			}
			if !tt.usage && err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("output %q does not contain %q", out.String(), tt.wantOut)
			}
		})
	}
}
