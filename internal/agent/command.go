package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

// Command runs the agent from command-line arguments (without the program
// or subcommand name). Both `nocsoc agent` and the standalone nocsoc-agent
// binary use it.
func Command(ctx context.Context, args []string, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "run" {
		// `agent run --job NAME -- COMMAND…` wraps a backup (backup.go).
		return runJobCommand(ctx, args[1:], os.Stdout, stderr)
	}
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	var level string
	fs.StringVar(&o.Server, "server", "", "server base URL, e.g. https://noc.example.com (required)")
	fs.StringVar(&o.EnrollToken, "enroll-token", os.Getenv("NOCSOC_ENROLL_TOKEN"), "single-use enrollment token (needed once; or NOCSOC_ENROLL_TOKEN)")
	fs.StringVar(&o.StateDir, "state", "/var/lib/nocsoc-agent", "state directory: credential, sequence, disk buffer")
	fs.DurationVar(&o.Interval, "interval", 30*time.Second, "heartbeat and metrics interval")
	fs.DurationVar(&o.InventoryInterval, "inventory-interval", 15*time.Minute, "inventory collection interval")
	fs.DurationVar(&o.UpdatesInterval, "updates-interval", time.Hour, "pending updates collection interval (negative disables)")
	fs.BoolVar(&o.ActiveResponse, "active-response", false, "run active-response jobs: firewall block/isolate, lock user, kill process (off: they are refused)")
	fs.BoolVar(&o.AllowShell, "allow-shell", false, "run \"shell\" jobs (an admin must also enable shell for this endpoint on the server)")
	fs.StringVar(&o.PinSHA256, "pin-sha256", "", "hex SHA-256 of the server's leaf certificate; replaces CA verification")
	fs.StringVar(&o.CAFile, "ca-file", "", "PEM file of CA certificates to trust instead of the system's")
	fs.IntVar(&o.BufferBatches, "buffer-batches", 10000, "disk buffer bound in batches (oldest dropped beyond)")
	fs.Int64Var(&o.BufferBytes, "buffer-bytes", 256<<20, "disk buffer bound in bytes (oldest dropped beyond)")
	fs.StringVar(&level, "log-level", "info", "debug, info, warn or error")
	fs.Func("logs", "glob of log files to tail and ship, e.g. /var/log/auth.log (repeatable; comma-separated lists too)", func(v string) error {
		for _, g := range strings.Split(v, ",") {
			if g = strings.TrimSpace(g); g != "" {
				o.LogFiles = append(o.LogFiles, g)
			}
		}
		return nil
	})
	fs.Func("label", "endpoint label key=value for active-response scopes, e.g. role=web (repeatable)", func(v string) error {
		k, val, err := agentproto.ParseLabel(v)
		if err != nil {
			return err
		}
		if o.Labels == nil {
			o.Labels = map[string]string{}
		}
		if _, dup := o.Labels[k]; dup {
			return fmt.Errorf("label %q given twice", k)
		}
		if len(o.Labels) >= agentproto.MaxLabels {
			return fmt.Errorf("at most %d labels", agentproto.MaxLabels)
		}
		o.Labels[k] = val
		return nil
	})
	fs.BoolVar(&o.Journal, "journal", false, "ship journald entries (needs journalctl)")
	fs.BoolVar(&o.LogsFromStart, "logs-from-start", false, "on the very first start, ship log files from their beginning (default: only new lines)")
	fs.DurationVar(&o.LogPoll, "logs-poll", DefaultLogPoll, "how often tailed files are read")
	fs.Func("fim-paths", "comma-separated files and globs watched by file integrity monitoring, or \"none\" (default: "+strings.Join(DefaultFIMPaths, ",")+")", func(v string) error {
		paths, err := ParseFIMPaths(v)
		if err != nil {
			return err
		}
		if paths == nil {
			o.FIMInterval = -1 // "none"
		}
		o.FIMPaths = paths
		return nil
	})
	var fimEvery time.Duration
	fs.DurationVar(&fimEvery, "fim-interval", 0, "how often watched files are hashed (default: every --interval)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fimEvery < 0 {
		return fmt.Errorf("agent: fim-interval: must not be negative (got %s)", fimEvery)
	}
	if o.FIMInterval == 0 {
		o.FIMInterval = fimEvery
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("agent: unexpected argument %q", fs.Arg(0))
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("agent: log-level: %q is not debug, info, warn or error", level)
	}
	o.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))
	err := Run(ctx, o)
	if errors.Is(err, ErrRefused) && strings.Contains(err.Error(), "revoked") {
		return fmt.Errorf("%w (this agent was revoked; enroll again with a new token after deleting %s/agent.json)", err, o.StateDir)
	}
	return err
}
