package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fakeMTA writes an executable script named name into a fresh directory
// and puts only that directory on PATH (with /bin for the shell).
func fakeMTA(t *testing.T, name, script string) {
	t.Helper()
	needSh(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
}

func TestMailQueuePostfix(t *testing.T) {
	fakeMTA(t, "postqueue", `[ "$1" = "-j" ] || exit 64
printf '%s\n' '{"queue_name": "deferred", "queue_id": "A1"}' '{"queue_name": "active", "queue_id": "B2"}' '{"queue_name": "hold", "queue_id": "C3"}'
`)
	a := &Agent{log: slog.New(slog.DiscardHandler)}
	s := a.mailQueueSamples(context.Background(), time.Unix(0, 0))
	if len(s) != 1 || s[0].Name != MetricMailQueue || s[0].Value != 3 || s[0].Labels["mta"] != "postfix" {
		t.Fatalf("samples = %+v", s)
	}
}

func TestMailQueueEmptyAndBroken(t *testing.T) {
	fakeMTA(t, "postqueue", "exit 0\n")
	a := &Agent{log: slog.New(slog.DiscardHandler)}
	if s := a.mailQueueSamples(context.Background(), time.Unix(0, 0)); len(s) != 1 || s[0].Value != 0 {
		t.Fatalf("empty queue: %+v", s)
	}
	fakeMTA(t, "postqueue", "echo 'postqueue: fatal: Queue report unavailable - mail system is down' >&2; exit 75\n")
	if s := a.mailQueueSamples(context.Background(), time.Unix(0, 0)); len(s) != 0 {
		t.Fatalf("failing postqueue gave %+v", s)
	}
	_, _, ok, err := mailQueue(context.Background())
	if !ok || err == nil {
		t.Fatalf("failing postqueue: ok %v err %v", ok, err)
	}
}

func TestMailQueueExim(t *testing.T) {
	fakeMTA(t, "exim4", `[ "$1" = "-bpc" ] || exit 64
echo 17
`)
	a := &Agent{log: slog.New(slog.DiscardHandler)}
	s := a.mailQueueSamples(context.Background(), time.Unix(0, 0))
	if len(s) != 1 || s[0].Value != 17 || s[0].Labels["mta"] != "exim" {
		t.Fatalf("samples = %+v", s)
	}
}

func TestMailQueueAbsent(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	a := &Agent{log: slog.New(slog.DiscardHandler)}
	if s := a.mailQueueSamples(context.Background(), time.Unix(0, 0)); len(s) != 0 {
		t.Fatalf("no MTA but samples %+v", s)
	}
}
