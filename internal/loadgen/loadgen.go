// Package loadgen generates load for nocsoc's performance benchmarks: fast
// loopback HTTP targets, configs with thousands of http checks, and drivers
// that measure the probe throughput of nocsoc's own prober and of
// Prometheus' blackbox_exporter under the same conditions.
package loadgen

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"
)

// Usage is the help text of the loadgen subcommands.
const Usage = `Usage:
  nocsoc loadgen targets --listen 127.0.0.1:PORT
      serve fast HTTP targets (any path: 200 {"status":"ok"}) until interrupted;
      GET /-/stats returns {"requests":N,"connections":M}
  nocsoc loadgen checks-config --checks N --target http://127.0.0.1:PORT [--interval 60s] [--timeout D]
      write a nocsoc YAML config with N http checks on TARGET/t/<i> to stdout
  nocsoc loadgen probes --target URL [--concurrency 32] [--duration 30s]
      run nocsoc's http prober against URL as fast as possible; print probes/s
  nocsoc loadgen blackbox --exporter URL --target URL [--concurrency 32] [--duration 30s]
      drive blackbox_exporter's /probe?module=http_2xx against URL; print probes/s
  nocsoc loadgen alerts --url URL [--key KEY] [--format events|alertmanager|am-v2] [--rate N]
        [--concurrency 16] [--duration 30s] [--distinct 1000] [--critical] [--batch 1] [--count N] [--prefix lg]
      send an alert stream (rate 0: as fast as possible); print sent/s, accepted/s,
      errors and reply latency p50/p90/p99; every summary carries sent_ns=<unix ns>
  nocsoc loadgen receiver --listen 127.0.0.1:PORT [--interval 0]
      webhook receiver: delay from each alert's sent_ns to its notification, p50/p99
      on exit (and every interval); GET /-/stats as JSON, POST /-/reset clears
  nocsoc loadgen syslog --addr 127.0.0.1:PORT [--rate 10000] [--duration 30s] [--connections 4]
        [--framing octet|newline] [--seed 1] [--mark-every D --receiver 127.0.0.1:PORT [--drain 10s]]
      send a mixed Linux log stream over TCP syslog (rate 0: as fast as possible); print sent/s
      and, with marks, brute-force burst -> webhook alert latency p50/p99
  nocsoc loadgen syslog --file PATH [--count 1000000] [--rate 10000] [--framing newline] [--seed 1] [--start RFC3339]
      write the same stream to a file (timestamps spaced 1/rate apart)
  nocsoc loadgen agents --server URL --token ADMIN_TOKEN [--count 5000] [--interval 30s] [--duration 0]
        [--connections 256] [--enroll-concurrency 16] [--host-prefix lg-agent]
      enroll COUNT simulated agents (one enrollment token each, made with the admin token), then
      have each heartbeat and send a ~40-sample metrics batch every interval, phases spread evenly,
      over keep-alive HTTP; print requests/s, errors and reply latency p50/p99
`

// UsageError is a command-line mistake; the caller prints Usage with it.
type UsageError struct{ Msg string }

func (e UsageError) Error() string { return e.Msg }

// Run runs one loadgen subcommand; args excludes "loadgen" itself. It returns
// when the work is done or ctx is cancelled (targets runs until then).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return UsageError{"loadgen: expected a subcommand: targets, checks-config, probes, blackbox, alerts, receiver, syslog or agents"}
	}
	switch args[0] {
	case "targets":
		return targetsCmd(ctx, args[1:], stderr)
	case "checks-config":
		return checksConfigCmd(args[1:], stdout)
	case "probes":
		return probesCmd(ctx, args[1:], stdout)
	case "blackbox":
		return blackboxCmd(ctx, args[1:], stdout)
	case "alerts":
		return alertsCmd(ctx, args[1:], stdout)
	case "receiver":
		return receiverCmd(ctx, args[1:], stdout, stderr)
	case "syslog":
		return syslogCmd(ctx, args[1:], stdout)
	case "agents":
		return agentsCmd(ctx, args[1:], stdout, stderr) // agents.go
	case "help", "-h", "--help":
		_, err := io.WriteString(stdout, Usage)
		return err
	}
	return UsageError{fmt.Sprintf("loadgen: unknown subcommand %q", args[0])}
}

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return UsageError{fmt.Sprintf("loadgen %s: %v", fs.Name(), err)}
	}
	if fs.NArg() > 0 {
		return UsageError{fmt.Sprintf("loadgen %s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}

func targetsCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("targets")
	listen := fs.String("listen", "127.0.0.1:9900", "listen address")
	if err := parse(fs, args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("loadgen targets: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("component", "loadgen-targets")
	t := NewTargets()
	log.Info("serving targets", "addr", ln.Addr().String())
	err = t.Serve(ctx, ln)
	st := t.Stats()
	log.Info("stopped", "requests", st.Requests, "connections", st.Connections)
	return err
}

func checksConfigCmd(args []string, stdout io.Writer) error {
	fs := newFlags("checks-config")
	var o ConfigOptions
	fs.IntVar(&o.Checks, "checks", 10000, "number of http checks")
	fs.StringVar(&o.Target, "target", "", "base URL of the targets, e.g. http://127.0.0.1:9900")
	fs.DurationVar(&o.Interval, "interval", 60*time.Second, "interval of every check")
	fs.DurationVar(&o.Timeout, "timeout", 0, "timeout of every check (default: nocsoc's, 10s or the interval if shorter)")
	if err := parse(fs, args); err != nil {
		return err
	}
	err := WriteChecksConfig(stdout, o)
	var fe *FlagError
	if errors.As(err, &fe) {
		return UsageError{"loadgen checks-config: " + fe.Error()}
	}
	return err
}

func driveFlags(name string, o *DriveOptions) *flag.FlagSet {
	fs := newFlags(name)
	fs.StringVar(&o.Target, "target", "", "URL every probe fetches")
	fs.IntVar(&o.Concurrency, "concurrency", 32, "probes in flight at once")
	fs.DurationVar(&o.Duration, "duration", 30*time.Second, "how long to run")
	return fs
}

func probesCmd(ctx context.Context, args []string, stdout io.Writer) error {
	var o DriveOptions
	fs := driveFlags("probes", &o)
	if err := parse(fs, args); err != nil {
		return err
	}
	r, err := RunProbes(ctx, o)
	if err != nil {
		return usageIfFlag("probes", err)
	}
	_, err = fmt.Fprintln(stdout, r.String())
	return err
}

func blackboxCmd(ctx context.Context, args []string, stdout io.Writer) error {
	var o DriveOptions
	fs := driveFlags("blackbox", &o)
	fs.StringVar(&o.Exporter, "exporter", "", "base URL of blackbox_exporter, e.g. http://127.0.0.1:9115")
	fs.StringVar(&o.Module, "module", "http_2xx", "blackbox_exporter module")
	if err := parse(fs, args); err != nil {
		return err
	}
	r, err := RunBlackbox(ctx, o)
	if err != nil {
		return usageIfFlag("blackbox", err)
	}
	_, err = fmt.Fprintln(stdout, r.String())
	return err
}

func usageIfFlag(cmd string, err error) error {
	var fe *FlagError
	if errors.As(err, &fe) {
		return UsageError{"loadgen " + cmd + ": " + fe.Error()}
	}
	return err
}

// FlagError names the option that is wrong and why.
type FlagError struct {
	Flag   string
	Reason string
}

func (e *FlagError) Error() string { return "--" + e.Flag + ": " + e.Reason }
