package response

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/nocsoc/nocsoc/internal/incident"

	"github.com/nocsoc/nocsoc/internal/notify"
	"github.com/nocsoc/nocsoc/internal/oncall"
	"github.com/nocsoc/nocsoc/internal/store"
)

// Tick pages every open, unacknowledged incident whose group wait or tier
// timeout has passed. Run calls it every second; tests call it with an
// injected clock.
func (s *Service) Tick(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var due []*incident.Incident
	for _, inc := range s.open {
		if inc.Status == incident.StatusTriggered && inc.NextEscalationAt != nil && !inc.NextEscalationAt.After(now) {
			due = append(due, inc)
		}
	}
	if len(due) == 0 {
		return nil
	}
	sort.Slice(due, func(i, j int) bool { return due[i].ID < due[j].ID })
	var sends []pendingSend
	err := s.st.Batch(ctx, func(tx *store.Tx) error {
		bc := &batchCtx{tx: tx, ctx: ctx, now: now, dirty: map[int64]*incident.Incident{}}
		for _, inc := range due {
			if err := s.escalateDue(bc, inc, now); err != nil {
				return err
			}
		}
		for _, inc := range bc.dirty {
			if err := tx.UpdateIncident(*inc); err != nil {
				return err
			}
		}
		sends = bc.sends
		return nil
	})
	if err != nil {
		if lerr := s.load(context.WithoutCancel(ctx)); lerr != nil {
			s.log.Error("reload live state", "err", lerr)
		}
		return err
	}
	s.enqueue(sends)
	return nil
}

// escalateDue takes the next escalation step of a due incident: the first
// page (tier -1 → L1) or the next tier when the current one timed out.
func (s *Service) escalateDue(bc *batchCtx, inc *incident.Incident, now time.Time) error {
	pol, hasPolicy := s.policy(bc.ctx, inc.Policy)
	st := oncall.EscState{Tier: inc.Tier, Round: inc.EscalationRound}
	var tier *oncall.Tier
	switch {
	case !hasPolicy:
		// No policy: notify the route's channels once.
		inc.NextEscalationAt = nil
		if inc.Tier < 0 {
			inc.Tier = 0
			bc.dirty[inc.ID] = inc
			return s.page(bc, inc, nil, "triggered", now, "system")
		}
		bc.dirty[inc.ID] = inc
		return nil
	case inc.Tier < 0:
		var first oncall.Tier
		st, first = pol.Start(now)
		tier = &first
	default:
		if inc.NextEscalationAt != nil {
			st.NextAt = inc.NextEscalationAt
		}
		st, tier = pol.Due(st, now)
	}
	inc.Tier, inc.EscalationRound, inc.NextEscalationAt = st.Tier, st.Round, st.NextAt
	bc.dirty[inc.ID] = inc
	if tier == nil {
		return s.timeline(bc, inc.ID, now, "system", incident.KindEscalated, "escalation policy exhausted: nobody acknowledged", map[string]any{"policy": pol.Name})
	}
	event := "triggered"
	if inc.Escalations > 0 || st.Round > 0 || st.Tier > 0 {
		event = "escalated"
	}
	inc.Escalations++
	return s.page(bc, inc, tier, event, now, "system")
}

// page notifies a tier's targets (and, on the first page, the route's
// channels) and records it on the timeline.
func (s *Service) page(bc *batchCtx, inc *incident.Incident, tier *oncall.Tier, event string, now time.Time, actor string) error {
	var rec oncall.Recipients
	tierName := ""
	if tier != nil {
		tierName = tier.Name
		rec = oncall.ResolveTargetsWithPolicies(tier.Targets, s.schedules(bc.ctx), s.policyPointers(bc.ctx), now)
	}
	channels := append([]string{}, rec.Channels...)
	if event == "triggered" || len(channels) == 0 {
		channels = append(channels, inc.Channels...)
	}
	channels = uniq(channels)
	msg := s.message(inc, event, now)
	msg.Tier = tierName
	msg.Recipients = rec.Users
	var sent []string
	for _, name := range channels {
		ch, ok := s.channel(bc.ctx, name)
		if !ok {
			if err := s.timeline(bc, inc.ID, now, "system", incident.KindNotifyFailed, fmt.Sprintf("channel %q does not exist", name), map[string]any{"channel": name}); err != nil {
				return err
			}
			continue
		}
		bc.sends = append(bc.sends, pendingSend{ch: ch, msg: msg})
		sent = append(sent, name)
	}
	inc.Channels = uniq(append(inc.Channels, sent...))
	text := "paged"
	if tierName != "" {
		text = "paged " + tierName
	}
	if len(rec.Users) > 0 {
		text += fmt.Sprintf(" (on call: %v)", rec.Users)
	}
	if len(sent) > 0 {
		text += fmt.Sprintf(" via %v", sent)
	}
	bc.dirty[inc.ID] = inc
	return s.timeline(bc, inc.ID, now, actor, incident.KindEscalated, text, map[string]any{"tier": tierName, "users": rec.Users, "channels": sent, "event": event})
}

// notifyPaged tells every channel that was paged about an acknowledgement
// or resolve: resolves are always delivered to whoever got the page.
func (s *Service) notifyPaged(bc *batchCtx, inc *incident.Incident, event string, now time.Time) {
	msg := s.message(inc, event, now)
	for _, name := range inc.Channels {
		if ch, ok := s.channel(bc.ctx, name); ok {
			bc.sends = append(bc.sends, pendingSend{ch: ch, msg: msg})
		}
	}
}

func (s *Service) message(inc *incident.Incident, event string, now time.Time) notify.Message {
	return notify.Message{
		Event: event, IncidentID: inc.ID, Title: inc.Title, Severity: inc.Severity, Team: inc.Team,
		Status: inc.Status, URL: s.incidentURL(inc.ID), Labels: inc.Labels, Time: now,
		Summary: fmt.Sprintf("%d alert(s); %s", inc.AlertCount, inc.Status),
	}
}

func uniq(ss []string) []string {
	seen := map[string]bool{}
	out := ss[:0:0]
	for _, s := range ss {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func (s *Service) policyPointers(ctx context.Context) map[string]*oncall.Policy {
	return s.idx.policies
}
