package fleet

import (
	"context"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/store"
)

// applyExtensions applies the parts of a batch beyond metrics and
// inventory, each in its own file; it runs before the batch id is
// recorded, so a failure makes the agent retry the whole batch.
func (s *Service) applyExtensions(ctx context.Context, e store.Endpoint, b agentproto.Batch) error {
	for _, apply := range []func(context.Context, store.Endpoint, agentproto.Batch) error{
		s.applyUpdates, // patches.go
		s.applyBackups, // backups.go
		s.applyFiles,   // fim.go
		s.applyLogs,    // logs.go
		s.applyFacts,   // facts.go
	} {
		if err := apply(ctx, e, b); err != nil {
			return err
		}
	}
	return nil
}
