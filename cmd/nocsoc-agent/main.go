// Command nocsoc-agent is the nocsoc endpoint agent as a small static
// binary (CGO_ENABLED=0): it reports heartbeats, metrics and inventory to
// a nocsoc server over outbound HTTPS. See docs/agent.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/nocsoc/nocsoc/internal/agent"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := agent.Command(ctx, os.Args[1:], os.Stderr); err != nil {
		// `run --job` exits with the wrapped command's status.
		var ee *agent.ExitError
		if errors.As(err, &ee) {
			stop()
			os.Exit(ee.Code)
		}
		fmt.Fprintf(os.Stderr, "nocsoc-agent: %v\n", err)
		stop()
		os.Exit(1)
	}
}
