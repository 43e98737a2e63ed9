package main

import (
	"context"
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
	return agent.Command(ctx, args, stderr)
}
