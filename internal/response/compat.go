package response

import (
	"github.com/nocsoc/nocsoc/internal/incident"
	"github.com/nocsoc/nocsoc/internal/oncall"
)

type oncallTier = oncall.Tier

func escState(inc *incident.Incident) oncall.EscState {
	return oncall.EscState{Tier: inc.Tier, Round: inc.EscalationRound, NextAt: inc.NextEscalationAt}
}
