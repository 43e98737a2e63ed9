package fleet

import (
	"context"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/store"
)

func (s *Service) applyBackups(ctx context.Context, e store.Endpoint, b agentproto.Batch) error {
	return nil
}
