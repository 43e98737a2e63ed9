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
)

// Command runs the agent from command-line arguments (without the program
// or subcommand name). Both `nocsoc agent` and the standalone nocsoc-agent
// binary use it.
func Command(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	var level string
	fs.StringVar(&o.Server, "server", "", "server base URL, e.g. https://noc.example.com (required)")
	fs.StringVar(&o.EnrollToken, "enroll-token", os.Getenv("NOCSOC_ENROLL_TOKEN"), "single-use enrollment token (needed once; or NOCSOC_ENROLL_TOKEN)")
	fs.StringVar(&o.StateDir, "state", "/var/lib/nocsoc-agent", "state directory: credential, sequence, disk buffer")
	fs.DurationVar(&o.Interval, "interval", 30*time.Second, "heartbeat and metrics interval")
	fs.DurationVar(&o.InventoryInterval, "inventory-interval", 15*time.Minute, "inventory collection interval")
	fs.StringVar(&o.PinSHA256, "pin-sha256", "", "hex SHA-256 of the server's leaf certificate; replaces CA verification")
	fs.StringVar(&o.CAFile, "ca-file", "", "PEM file of CA certificates to trust instead of the system's")
	fs.IntVar(&o.BufferBatches, "buffer-batches", 10000, "disk buffer bound in batches (oldest dropped beyond)")
	fs.Int64Var(&o.BufferBytes, "buffer-bytes", 256<<20, "disk buffer bound in bytes (oldest dropped beyond)")
	fs.StringVar(&level, "log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
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
