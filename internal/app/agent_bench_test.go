package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/app"
)

// BenchmarkAgentFootprint runs the real static agent at its default
// intervals for NOCSOC_AGENT_BENCH_SECONDS (default 65) against an
// in-process server and reports, from /proc, its CPU use and memory:
//
//	go test -run '^$' -bench AgentFootprint -benchtime 1x ./internal/app/
func BenchmarkAgentFootprint(b *testing.B) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		b.Skip("go not on PATH")
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "nocsoc-agent")
	build := exec.Command(goBin, "build", "-o", bin, "github.com/nocsoc/nocsoc/cmd/nocsoc-agent")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	fi, err := os.Stat(bin)
	if err != nil {
		b.Fatal(err)
	}
	secs := 65
	if v, err := strconv.Atoi(os.Getenv("NOCSOC_AGENT_BENCH_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	for b.Loop() {
		ctx, cancel := context.WithCancel(context.Background())
		a, err := app.New(ctx, app.Options{DataDir: filepath.Join(dir, "data"), Listen: "127.0.0.1:0", AdminPassword: adminPassword, ConfigPoll: -1,
			Logger: slog.New(slog.DiscardHandler), Stderr: io.Discard})
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		var tok struct {
			Token string `json:"token"`
		}
		agentBenchPost(b, a.URL()+"/api/v1/tokens", "", `{"name":"bench"}`, &tok)
		var enr struct {
			Token string `json:"token"`
		}
		agentBenchPost(b, a.URL()+"/api/v1/enrollment-tokens", tok.Token, `{}`, &enr)
		cmd := exec.Command(bin, "--server", a.URL(), "--enroll-token", enr.Token, "--state", filepath.Join(dir, "state"))
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		time.Sleep(time.Duration(secs) * time.Second) // the measurement window itself
		cpu := procCPUSeconds(b, cmd.Process.Pid)
		rss, hwm := procMem(b, cmd.Process.Pid)
		wall := time.Since(start).Seconds()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
		b.ReportMetric(cpu/wall*100, "cpu%")
		b.ReportMetric(cpu, "cpu-s")
		b.ReportMetric(float64(rss)/1024, "rss-MiB")
		b.ReportMetric(float64(hwm)/1024, "peak-rss-MiB")
		b.ReportMetric(float64(fi.Size())/(1<<20), "binary-MiB")
	}
}

func agentBenchPost(b *testing.B, url, token, body string, out any) {
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	if token == "" {
		req.SetBasicAuth("admin", adminPassword)
	} else {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil || resp.StatusCode != http.StatusCreated {
		b.Fatalf("POST %s: %d %v", url, resp.StatusCode, err)
	}
}

// procCPUSeconds is utime+stime of pid.
func procCPUSeconds(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th fields of the whole line.
	rest := string(raw[strings.LastIndexByte(string(raw), ')')+2:])
	f := strings.Fields(rest)
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// procMem returns VmRSS and VmHWM in KiB.
func procMem(b *testing.B, pid int) (rss, hwm int64) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = v
		case "VmHWM:":
			hwm = v
		}
	}
	return rss, hwm
}
