package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/nocsoc/nocsoc/internal/agent"
)

// agentCmd runs the endpoint agent (the same code as the standalone
// nocsoc-agent binary).
func agentCmd(args []string, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := agent.Command(ctx, args, stderr)
	// `agent run --job` exits with the wrapped command's status.
	var ee *agent.ExitError
	if errors.As(err, &ee) {
		stop()
		os.Exit(ee.Code)
	}
	return err
}
