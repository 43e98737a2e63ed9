package response

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nocsoc/nocsoc/internal/incident"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/store"
)

// mutate runs one operator action on one incident in one transaction: it
// loads the incident, lets fn change it, writes it with an audit entry
// (before/after) and only then sends notifications.
func (s *Service) mutate(ctx context.Context, actor store.Actor, id int64, action string, fn func(bc *batchCtx, inc *incident.Incident) error) (incident.Incident, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inc, err := s.incident(ctx, id)
	if err != nil {
		return incident.Incident{}, err
	}
	before := *inc
	work := *inc // fn changes a copy; memory is updated only after commit
	var sends []pendingSend
	var committed []incident.Incident
	err = s.st.Batch(ctx, func(tx *store.Tx) error {
		bc := &batchCtx{tx: tx, ctx: ctx, now: s.now(), dirty: map[int64]*incident.Incident{}}
		committed = committed[:0]
		if err := fn(bc, &work); err != nil {
			return err
		}
		bc.dirty[work.ID] = &work
		for _, d := range bc.dirty {
			if err := tx.UpdateIncident(*d); err != nil {
				return err
			}
		}
		// Read back what was written: alert counts are kept by the store.
		for id := range bc.dirty {
			got, err := tx.GetIncident(id)
			if err != nil {
				return err
			}
			committed = append(committed, got)
			if id == work.ID {
				work = got
			}
		}
		if err := tx.Audit(actor, action, fmt.Sprintf("incident:%d", id), before, work); err != nil {
			return err
		}
		sends = bc.sends
		return nil
	})
	if err != nil {
		// fn may have touched the live maps; rebuild them from the store.
		if lerr := s.load(context.WithoutCancel(ctx)); lerr != nil {
			s.log.Error("reload live state", "err", lerr)
		}
		return incident.Incident{}, err
	}
	// Every incident the action touched takes its committed state.
	for _, d := range committed {
		s.remember(d)
	}
	s.enqueue(sends)
	return work, nil
}

// remember installs an incident's committed state in the live maps.
func (s *Service) remember(d incident.Incident) {
	if incident.Open(d.Status) {
		cp := d
		s.open[d.ID] = &cp
		if cp.GroupKey != "" {
			s.groups[cp.GroupKey] = d.ID
		}
		return
	}
	delete(s.open, d.ID)
	if s.groups[d.GroupKey] == d.ID {
		delete(s.groups, d.GroupKey)
	}
}

// incident returns the live copy of an open incident, or loads it.
func (s *Service) incident(ctx context.Context, id int64) (*incident.Incident, error) {
	if inc, ok := s.open[id]; ok {
		return inc, nil
	}
	inc, err := s.st.GetIncident(ctx, id)
	if err != nil {
		return nil, err
	}
	return &inc, nil
}

// Get returns an incident.
func (s *Service) Get(ctx context.Context, id int64) (incident.Incident, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inc, err := s.incident(ctx, id)
	if err != nil {
		return incident.Incident{}, err
	}
	return *inc, nil
}

// Acknowledge stops escalation and makes the actor the owner.
func (s *Service) Acknowledge(ctx context.Context, actor store.Actor, id int64) (incident.Incident, error) {
	return s.SetStatus(ctx, actor, id, incident.StatusAcknowledged, "")
}

// SetStatus moves an incident through the workflow.
func (s *Service) SetStatus(ctx context.Context, actor store.Actor, id int64, to, note string) (incident.Incident, error) {
	return s.mutate(ctx, actor, id, "incident."+to, func(bc *batchCtx, inc *incident.Incident) error {
		if inc.Status == to {
			return fmt.Errorf("incident %d is already %s: %w", id, to, store.ErrConflict)
		}
		return s.setStatus(bc, inc, to, bc.now, actor.Name, note)
	})
}

// Escalate moves an unresolved incident to its next tier now; Deescalate
// moves it back one tier.
func (s *Service) Escalate(ctx context.Context, actor store.Actor, id int64, down bool) (incident.Incident, error) {
	action := "incident.escalate"
	if down {
		action = "incident.deescalate"
	}
	return s.mutate(ctx, actor, id, action, func(bc *batchCtx, inc *incident.Incident) error {
		if !incident.Open(inc.Status) {
			return fmt.Errorf("incident %d is %s: %w", id, inc.Status, ErrNotOpen)
		}
		pol, ok := s.policy(bc.ctx, inc.Policy)
		if !ok {
			return &check.FieldError{Field: "policy", Reason: "the incident has no escalation policy"}
		}
		st := escState(inc)
		var next *oncallTier
		var err error
		if down {
			st, next, err = pol.Deescalate(st, bc.now)
		} else {
			st, next, err = pol.Escalate(st, bc.now)
		}
		if err != nil {
			return &check.FieldError{Field: "tier", Reason: err.Error()}
		}
		inc.Tier, inc.EscalationRound = st.Tier, st.Round
		if inc.Status == incident.StatusTriggered {
			inc.NextEscalationAt = st.NextAt
		}
		if !down {
			inc.Escalations++
		}
		event := "escalated"
		if down {
			event = "deescalated"
		}
		return s.page(bc, inc, next, event, bc.now, actor.Name)
	})
}

// Assign sets the owner.
func (s *Service) Assign(ctx context.Context, actor store.Actor, id int64, owner string) (incident.Incident, error) {
	return s.mutate(ctx, actor, id, "incident.assign", func(bc *batchCtx, inc *incident.Incident) error {
		if _, err := s.st.UserByName(bc.ctx, owner); err != nil {
			return &check.FieldError{Field: "owner", Reason: fmt.Sprintf("user %q does not exist", owner)}
		}
		prev := inc.Owner
		inc.Owner = owner
		return s.timeline(bc, id, bc.now, actor.Name, incident.KindAssigned, fmt.Sprintf("owner %q → %q", prev, owner), nil)
	})
}

// Handoff moves an incident to the other team (or makes it joint), with a
// required note, and pages the receiving team.
func (s *Service) Handoff(ctx context.Context, actor store.Actor, id int64, team string, joint bool, note string) (incident.Incident, error) {
	if strings.TrimSpace(note) == "" {
		return incident.Incident{}, &check.FieldError{Field: "note", Reason: "a hand-off needs a note saying what the other team should know"}
	}
	if team != alert.TeamNOC && team != alert.TeamSOC {
		return incident.Incident{}, &check.FieldError{Field: "team", Reason: fmt.Sprintf("team must be noc or soc, got %q", team)}
	}
	return s.mutate(ctx, actor, id, "incident.handoff", func(bc *batchCtx, inc *incident.Incident) error {
		if !incident.Open(inc.Status) {
			return fmt.Errorf("incident %d is %s: %w", id, inc.Status, ErrNotOpen)
		}
		if inc.Team == team && inc.Joint == joint {
			return fmt.Errorf("incident %d already belongs to %s: %w", id, team, store.ErrConflict)
		}
		from := inc.Team
		inc.Team, inc.Joint = team, joint
		inc.Handoffs++
		// The receiving team's route decides its policy and channels.
		labels := map[string]string{}
		for k, v := range inc.Labels {
			labels[k] = v
		}
		labels["team"] = team
		d := s.rules.route.Match(labels)[0]
		if d.Policy != "" {
			inc.Policy = d.Policy
			if p, ok := s.policy(bc.ctx, d.Policy); ok {
				inc.PolicyID = p.ID
			}
		}
		inc.Channels = uniq(append(inc.Channels, d.Channels...))
		msg := fmt.Sprintf("handed from %s to %s", from, team)
		if joint {
			msg = fmt.Sprintf("made joint (%s and %s), owned by %s", alert.TeamNOC, alert.TeamSOC, team)
		}
		if err := s.timeline(bc, id, bc.now, actor.Name, incident.KindHandoff, msg+": "+note, map[string]any{"from": from, "to": team, "joint": joint, "note": note}); err != nil {
			return err
		}
		// Page the receiving team from its first tier.
		inc.Tier, inc.EscalationRound = -1, 0
		// The receiving team starts from triggered; the first
		// acknowledgement time stays, since MTTA measures the first one.
		if inc.Status != incident.StatusTriggered {
			inc.Status = incident.StatusTriggered
		}
		now := bc.now
		inc.NextEscalationAt = &now
		return s.escalateDue(bc, inc, now)
	})
}

// AddNote appends a note to the timeline.
func (s *Service) AddNote(ctx context.Context, actor store.Actor, id int64, text string) (incident.Incident, error) {
	if strings.TrimSpace(text) == "" {
		return incident.Incident{}, &check.FieldError{Field: "text", Reason: "a note cannot be empty"}
	}
	if len(text) > 64<<10 {
		return incident.Incident{}, &check.FieldError{Field: "text", Reason: "a note is limited to 64 KiB"}
	}
	return s.mutate(ctx, actor, id, "incident.note", func(bc *batchCtx, inc *incident.Incident) error {
		return s.timeline(bc, id, bc.now, actor.Name, incident.KindNote, text, nil)
	})
}

// AddTask adds a checklist item.
func (s *Service) AddTask(ctx context.Context, actor store.Actor, id int64, title string) (incident.Task, error) {
	if strings.TrimSpace(title) == "" {
		return incident.Task{}, &check.FieldError{Field: "title", Reason: "is required"}
	}
	var t incident.Task
	_, err := s.mutate(ctx, actor, id, "incident.task.add", func(bc *batchCtx, inc *incident.Incident) error {
		tasks, err := s.st.Tasks(bc.ctx, id)
		if err != nil {
			return err
		}
		t, err = bc.tx.AddTask(incident.Task{IncidentID: id, Title: title, Position: len(tasks)})
		if err != nil {
			return err
		}
		return s.timeline(bc, id, bc.now, actor.Name, incident.KindTaskAdded, "task added: "+title, map[string]any{"task_id": t.ID})
	})
	return t, err
}

// SetTaskDone checks or unchecks a task.
func (s *Service) SetTaskDone(ctx context.Context, actor store.Actor, id, taskID int64, done bool) (incident.Task, error) {
	var t incident.Task
	_, err := s.mutate(ctx, actor, id, "incident.task.done", func(bc *batchCtx, inc *incident.Incident) error {
		var err error
		t, err = s.st.GetTask(bc.ctx, taskID)
		if err != nil {
			return err
		}
		if t.IncidentID != id {
			return fmt.Errorf("task %d of incident %d: %w", taskID, id, store.ErrNotFound)
		}
		t.Done = done
		if done {
			now := bc.now
			t.DoneAt, t.DoneBy = &now, actor.Name
		} else {
			t.DoneAt, t.DoneBy = nil, ""
		}
		if err := bc.tx.UpdateTask(t); err != nil {
			return err
		}
		verb := "task done: "
		if !done {
			verb = "task reopened: "
		}
		return s.timeline(bc, id, bc.now, actor.Name, incident.KindTaskDone, verb+t.Title, map[string]any{"task_id": t.ID, "done": done})
	})
	return t, err
}

// AddObservable attaches an indicator.
func (s *Service) AddObservable(ctx context.Context, actor store.Actor, id int64, o incident.Observable) (incident.Observable, error) {
	if !slices.Contains(incident.ObservableTypes, o.Type) {
		return incident.Observable{}, &check.FieldError{Field: "type", Reason: fmt.Sprintf("unknown observable type %q (one of %s)", o.Type, strings.Join(incident.ObservableTypes, ", "))}
	}
	if strings.TrimSpace(o.Value) == "" {
		return incident.Observable{}, &check.FieldError{Field: "value", Reason: "is required"}
	}
	if o.TLP == "" {
		o.TLP = "amber"
	}
	if !slices.Contains(incident.TLPLevels, o.TLP) {
		return incident.Observable{}, &check.FieldError{Field: "tlp", Reason: fmt.Sprintf("unknown TLP %q (one of %s)", o.TLP, strings.Join(incident.TLPLevels, ", "))}
	}
	var got incident.Observable
	_, err := s.mutate(ctx, actor, id, "incident.observable.add", func(bc *batchCtx, inc *incident.Incident) error {
		o.IncidentID, o.AddedBy, o.AddedAt = id, actor.Name, bc.now
		var err error
		if got, err = bc.tx.AddObservable(o); err != nil {
			return err
		}
		return s.timeline(bc, id, bc.now, actor.Name, incident.KindObservable, fmt.Sprintf("observable %s %s (TLP:%s)", o.Type, o.Value, strings.ToUpper(o.TLP)), map[string]any{"observable_id": got.ID})
	})
	return got, err
}

// SavePostmortem records the postmortem of a resolved or closed incident.
func (s *Service) SavePostmortem(ctx context.Context, actor store.Actor, id int64, pm incident.Postmortem) (incident.Postmortem, error) {
	if !slices.Contains(incident.NaturalCauses, pm.Category) && !slices.Contains(incident.HumanCauses, pm.Category) {
		return incident.Postmortem{}, &check.FieldError{Field: "category", Reason: fmt.Sprintf("unknown root-cause category %q (natural: %s; human: %s)", pm.Category, strings.Join(incident.NaturalCauses, ", "), strings.Join(incident.HumanCauses, ", "))}
	}
	if strings.TrimSpace(pm.Summary) == "" {
		return incident.Postmortem{}, &check.FieldError{Field: "summary", Reason: "is required"}
	}
	for i, a := range pm.ActionItems {
		if strings.TrimSpace(a.Title) == "" {
			return incident.Postmortem{}, &check.FieldError{Field: fmt.Sprintf("action_items[%d].title", i), Reason: "is required"}
		}
		if strings.TrimSpace(a.Owner) == "" {
			return incident.Postmortem{}, &check.FieldError{Field: fmt.Sprintf("action_items[%d].owner", i), Reason: "every action item needs an owner"}
		}
	}
	_, err := s.mutate(ctx, actor, id, "incident.postmortem", func(bc *batchCtx, inc *incident.Incident) error {
		if incident.Open(inc.Status) {
			return fmt.Errorf("incident %d is %s: a postmortem needs a resolved incident: %w", id, inc.Status, store.ErrConflict)
		}
		pm.IncidentID, pm.Author, pm.UpdatedAt = id, actor.Name, bc.now
		if pm.ContributingFactors == nil {
			pm.ContributingFactors = []string{}
		}
		if pm.ActionItems == nil {
			pm.ActionItems = []incident.ActionItem{}
		}
		if err := bc.tx.SavePostmortem(pm); err != nil {
			return err
		}
		return s.timeline(bc, id, bc.now, actor.Name, incident.KindPostmortem, "postmortem: "+pm.Category+": "+pm.Summary, nil)
	})
	return pm, err
}

// Merge moves every alert of incident src into dst and resolves src.
func (s *Service) Merge(ctx context.Context, actor store.Actor, src, dst int64) (incident.Incident, error) {
	if src == dst {
		return incident.Incident{}, &check.FieldError{Field: "into", Reason: "an incident cannot be merged into itself"}
	}
	return s.mutate(ctx, actor, dst, "incident.merge", func(bc *batchCtx, target *incident.Incident) error {
		if !incident.Open(target.Status) {
			return fmt.Errorf("incident %d is %s: %w", dst, target.Status, ErrNotOpen)
		}
		source, err := s.incident(bc.ctx, src)
		if err != nil {
			return err
		}
		if source.MergedInto != 0 {
			return fmt.Errorf("incident %d was already merged into %d: %w", src, source.MergedInto, store.ErrConflict)
		}
		srcCopy := *source
		n, err := bc.tx.MoveAlerts(src, dst)
		if err != nil {
			return err
		}
		target.AlertCount += int(n)
		if severityRank(srcCopy.Severity) < severityRank(target.Severity) {
			target.Severity = srcCopy.Severity
		}
		moved := 0
		for _, la := range s.firing {
			if la.IncidentID == src {
				la.IncidentID = dst
				if la.Suppressed == "" {
					moved++
				}
			}
		}
		s.firingPer[dst] += moved
		delete(s.firingPer, src)
		srcCopy.MergedInto = dst
		srcCopy.AlertCount = 0
		if incident.Open(srcCopy.Status) {
			if err := s.setStatus(bc, &srcCopy, incident.StatusResolved, bc.now, actor.Name, fmt.Sprintf("merged into incident %d", dst)); err != nil {
				return err
			}
		}
		bc.dirty[src] = &srcCopy
		if err := s.timeline(bc, src, bc.now, actor.Name, incident.KindMerged, fmt.Sprintf("merged into incident %d (%d alerts moved)", dst, n), map[string]any{"into": dst}); err != nil {
			return err
		}
		return s.timeline(bc, dst, bc.now, actor.Name, incident.KindMerged, fmt.Sprintf("incident %d merged in (%d alerts)", src, n), map[string]any{"from": src})
	})
}

// MoveAlert attaches one alert to another open incident, or (to == 0)
// splits it out into a new incident of its own.
func (s *Service) MoveAlert(ctx context.Context, actor store.Actor, alertID, to int64) (incident.Incident, error) {
	a, err := s.st.GetAlert(ctx, alertID)
	if err != nil {
		return incident.Incident{}, err
	}
	if a.IncidentID == 0 {
		return incident.Incident{}, fmt.Errorf("alert %d is not attached to an incident: %w", alertID, store.ErrConflict)
	}
	from := a.IncidentID
	if to == from {
		return incident.Incident{}, &check.FieldError{Field: "incident_id", Reason: "the alert is already on that incident"}
	}
	return s.mutate(ctx, actor, from, "incident.alert.move", func(bc *batchCtx, src *incident.Incident) error {
		var dst *incident.Incident
		if to == 0 {
			created, err := bc.tx.CreateIncident(incident.Incident{
				Title: a.Title, Severity: a.Severity, Team: src.Team, Origin: src.Origin, Joint: src.Joint, Status: incident.StatusTriggered,
				Tier: -1, Policy: src.Policy, PolicyID: src.PolicyID, Service: a.Labels["service"], Labels: a.Labels,
				Channels: src.Channels, TriggeredAt: bc.now, AlertCount: 0,
			})
			if err != nil {
				return err
			}
			dst = &created
			if err := s.timeline(bc, dst.ID, bc.now, actor.Name, incident.KindCreated, fmt.Sprintf("split out of incident %d", from), map[string]any{"from": from}); err != nil {
				return err
			}
		} else {
			d, err := s.incident(bc.ctx, to)
			if err != nil {
				return err
			}
			if !incident.Open(d.Status) {
				return fmt.Errorf("incident %d is %s: %w", to, d.Status, ErrNotOpen)
			}
			cp := *d
			dst = &cp
		}
		if err := bc.tx.SetAlertIncident(alertID, dst.ID); err != nil {
			return err
		}
		src.AlertCount--
		dst.AlertCount++
		if la, ok := s.firing[a.Fingerprint]; ok && la.ID == alertID {
			la.IncidentID = dst.ID
			if la.Suppressed == "" {
				s.firingPer[from]--
				s.firingPer[dst.ID]++
			}
		}
		bc.dirty[dst.ID] = dst
		if err := s.timeline(bc, from, bc.now, actor.Name, incident.KindAlertDetached, fmt.Sprintf("alert %d moved to incident %d", alertID, dst.ID), map[string]any{"alert_id": alertID, "to": dst.ID}); err != nil {
			return err
		}
		return s.timeline(bc, dst.ID, bc.now, actor.Name, incident.KindAlertAttached, fmt.Sprintf("alert %d moved in from incident %d: %s", alertID, from, a.Title), map[string]any{"alert_id": alertID, "from": from})
	})
}

// ErrNotFound re-exports the store's sentinel for callers.
var ErrNotFound = store.ErrNotFound

var _ = errors.New
