package response

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/nocsoc/nocsoc/internal/incident"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/notify"
	"github.com/nocsoc/nocsoc/internal/runbook"
	"github.com/nocsoc/nocsoc/internal/store"
)

// Op kinds.
const (
	OpFire    = "fire"
	OpResolve = "resolve"
	OpAck     = "ack"
	// OpDelivery records a notification attempt (from the dispatcher), so
	// delivery records share the intake's group commit.
	OpDelivery = "delivery"
)

// Op is one intake operation: an alert firing, or a resolve or
// acknowledgement of a fingerprint.
type Op struct {
	Kind        string
	Alert       alert.Alert      // OpFire
	Fingerprint string           // OpResolve, OpAck
	Actor       string           // who acknowledged (OpAck)
	Delivery    *notify.Delivery // OpDelivery
	At          time.Time        // zero: now
}

// Outcome says what an Op did.
type Outcome struct {
	AlertID      int64  `json:"alert_id,omitempty"`
	Fingerprint  string `json:"fingerprint"`
	IncidentID   int64  `json:"incident_id,omitempty"`
	Deduplicated bool   `json:"deduplicated,omitempty"`
	SuppressedBy string `json:"suppressed_by,omitempty"`
	// Noop is set for a resolve or ack of an alert that is not firing
	// (duplicates of an earlier delivery are idempotent).
	Noop bool `json:"noop,omitempty"`
}

type op struct {
	Op
	res  Outcome
	err  error
	done chan struct{}
}

// ErrStopped is returned by Submit once the service's Run has ended
// (shutdown): nothing will process the operation.
var ErrStopped = errors.New("incident service is shutting down")

// Submit queues operations and waits until they are committed; the
// outcomes are in the same order. A full queue blocks (back-pressure);
// once Run has ended, Submit returns ErrStopped instead of waiting.

func (s *Service) Submit(ctx context.Context, ops ...Op) ([]Outcome, error) {
	pending := make([]*op, len(ops))
	for i, o := range ops {
		p := &op{Op: o, done: make(chan struct{})}
		pending[i] = p
		select {
		case s.queue <- p:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.stopped:
			return nil, ErrStopped
		}
	}
	out := make([]Outcome, len(ops))
	var errs []error
	for i, p := range pending {
		select {
		case <-p.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.stopped:
			// The loop may have taken p just before it stopped.
			select {
			case <-p.done:
			default:
				return nil, ErrStopped
			}
		}
		out[i] = p.res
		if p.err != nil {
			errs = append(errs, p.err)
		}
	}
	return out, errors.Join(errs...)
}

// QueueDepth is the number of intake operations waiting.
func (s *Service) QueueDepth() int { return len(s.queue) }

func (s *Service) intakeLoop(ctx context.Context) {
	batch := make([]*op, 0, s.maxBatch)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			s.drain(ErrStopped)
			return
		case p := <-s.queue:
			batch = append(batch, p)
		}
		// Take whatever else is already waiting: group commit.
	more:
		for len(batch) < s.maxBatch {
			select {
			case p := <-s.queue:
				batch = append(batch, p)
			default:
				break more
			}
		}
		s.processBatch(ctx, batch)
	}
}

func (s *Service) drain(err error) {
	for {
		select {
		case p := <-s.queue:
			p.err = err
			close(p.done)
		default:
			return
		}
	}
}

// pendingSend is a notification to enqueue after commit.
type pendingSend struct {
	ch  notify.Channel
	msg notify.Message
}

// batchCtx collects what a batch changes, so memory is only updated and
// notifications only sent after the commit succeeds.
type batchCtx struct {
	tx    *store.Tx
	ctx   context.Context
	now   time.Time
	sends []pendingSend
	// dirty incidents to write at the end of the batch.
	dirty map[int64]*incident.Incident
	// bumps are the repeats of firing alerts seen in the batch, by alert
	// id, in the order first seen: one update an alert (flushBumps)
	// instead of one a repeat. A detection batch repeats the same few
	// alerts many times.
	bumps     map[int64]*pendingBump
	bumpOrder []int64
	cur       *op // the op being applied
}

// pendingBump is the repeats of one firing alert not yet written.
type pendingBump struct {
	n     int
	seen  time.Time
	ann   map[string]string // the newest non-empty annotations
	first alert.Alert       // the first repeat
	ops   []*op             // the ops of the repeats
}

// bump records a repeat of the firing alert id.
func (bc *batchCtx) bump(id int64, a alert.Alert) {
	b := bc.bumps[id]
	if b == nil {
		if bc.bumps == nil {
			bc.bumps = map[int64]*pendingBump{}
		}
		b = &pendingBump{seen: a.LastSeenAt, first: a}
		bc.bumps[id] = b
		bc.bumpOrder = append(bc.bumpOrder, id)
	}
	b.n++
	if a.LastSeenAt.After(b.seen) {
		b.seen = a.LastSeenAt
	}
	if len(a.Annotations) > 0 {
		b.ann = a.Annotations
	}
	b.ops = append(b.ops, bc.cur)
}

// flushBumps writes the pending repeats, one update an alert. It runs
// before any op other than a fire, so that the ops of a batch apply in
// their order. An alert found no longer firing (resolved behind the
// service's back) ends as it would have one repeat at a time: the first
// repeat fires it afresh, the others count on the new alert, and their
// ops' outcomes say so.
func (s *Service) flushBumps(bc *batchCtx) error {
	order := bc.bumpOrder
	bumps := bc.bumps
	bc.bumps, bc.bumpOrder = nil, nil
	for _, id := range order {
		b := bumps[id]
		err := bc.tx.BumpAlertN(id, b.n, b.seen, b.ann)
		if err == nil {
			continue
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		fp := b.first.Fingerprint
		delete(s.firing, fp)
		s.inhibitor.Resolve(fp)
		out, err := s.fire(bc, b.first, b.first.LastSeenAt)
		if err != nil {
			return err
		}
		if b.n > 1 {
			if err := bc.tx.BumpAlertN(out.AlertID, b.n-1, b.seen, b.ann); err != nil {
				return err
			}
		}
		for i, p := range b.ops {
			p.res = out
			if i > 0 {
				p.res = Outcome{AlertID: out.AlertID, Fingerprint: fp, IncidentID: out.IncidentID, Deduplicated: true, SuppressedBy: out.SuppressedBy}
			}
		}
	}
	return nil
}

func (s *Service) processBatch(ctx context.Context, batch []*op) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sends []pendingSend
	err := s.st.Batch(ctx, func(tx *store.Tx) error {
		bc := &batchCtx{tx: tx, ctx: ctx, now: s.now(), dirty: map[int64]*incident.Incident{}}
		for _, p := range batch {
			if p.Kind != OpFire {
				if err := s.flushBumps(bc); err != nil {
					return err
				}
			}
			bc.cur = p
			p.res, p.err = s.apply(bc, p.Op)
		}
		if err := s.flushBumps(bc); err != nil {
			return err
		}
		for _, inc := range bc.dirty {
			if err := tx.UpdateIncident(*inc); err != nil {
				return fmt.Errorf("update incident %d: %w", inc.ID, err)
			}
		}
		sends = bc.sends
		return nil
	})
	if err != nil {
		// Nothing was committed: reload the live state (it may have been
		// changed while deciding) and fail every op of the batch.
		s.log.Error("intake batch failed", "ops", len(batch), "err", err)
		if lerr := s.load(context.WithoutCancel(ctx)); lerr != nil {
			s.log.Error("reload live state", "err", lerr)
		}
		for _, p := range batch {
			p.res, p.err = Outcome{}, fmt.Errorf("commit: %w", err)
		}
	}
	for _, p := range batch {
		close(p.done)
	}
	if err == nil {
		s.enqueue(sends)
		s.feed.notify(batch)
	}
}

func (s *Service) enqueue(sends []pendingSend) {
	if s.disp == nil {
		return
	}
	for _, p := range sends {
		if err := s.disp.Enqueue(p.ch, p.msg); err != nil {
			s.log.Error("notification dropped", "channel", p.ch.Name, "incident", p.msg.IncidentID, "err", err)
		}
	}
}

// apply decides one op inside the batch transaction.
func (s *Service) apply(bc *batchCtx, o Op) (Outcome, error) {
	at := o.At
	if at.IsZero() {
		at = bc.now
	}
	switch o.Kind {
	case OpFire:
		return s.fire(bc, o.Alert, at)
	case OpResolve:
		return s.resolveFP(bc, o.Fingerprint, at, "system")
	case OpAck:
		return s.ackFP(bc, o.Fingerprint, at, o.Actor)
	case OpDelivery:
		return Outcome{}, recordDelivery(bc.tx, *o.Delivery)
	}
	return Outcome{}, fmt.Errorf("unknown op %q", o.Kind)
}

func (s *Service) fire(bc *batchCtx, a alert.Alert, at time.Time) (Outcome, error) {
	if a.Labels == nil {
		a.Labels = map[string]string{}
	}
	if a.Fingerprint == "" {
		if a.DedupKey != "" {
			a.Fingerprint = alert.Fingerprint(map[string]string{"dedup_key": a.DedupKey, "integration": a.Integration})
		} else {
			a.Fingerprint = alert.Fingerprint(a.Labels)
		}
	}
	a.Status = alert.StatusFiring
	if a.StartedAt.IsZero() {
		a.StartedAt = at
	}
	if a.LastSeenAt.IsZero() {
		a.LastSeenAt = at
	}
	if a.Severity == "" {
		a.Severity = "high"
	}
	if a.Title == "" {
		a.Title = a.Labels["alertname"]
		if a.Title == "" {
			a.Title = "alert from " + a.Source
		}
	}
	// A repeat of a firing alert only bumps its counter: never a new page.
	// New annotations (a detection's latest matching events) replace the
	// old ones. The batch writes its repeats at its end (flushBumps).
	if la, ok := s.firing[a.Fingerprint]; ok {
		bc.bump(la.ID, a)
		return Outcome{AlertID: la.ID, Fingerprint: a.Fingerprint, IncidentID: la.IncidentID, Deduplicated: true, SuppressedBy: la.Suppressed}, nil
	}
	decisions := s.rules.route.Match(a.Labels)
	d := decisions[0]
	// A child route that names a team re-routes the alert; the root
	// route's team is only the default for alerts that carry none (so a
	// SOC detection stays with the SOC under a NOC-default root).
	if d.Team != "" && (a.Team == "" || d.RouteID != "0") {
		a.Team = d.Team
	}
	if a.Team == "" {
		a.Team = alert.TeamNOC
	}
	if d.Origin != "" && (a.Origin == "" || d.RouteID != "0") {
		a.Origin = d.Origin
	}
	if a.Origin == "" {
		if a.Team == alert.TeamSOC {
			a.Origin = alert.OriginHuman
		} else {
			a.Origin = alert.OriginNatural
		}
	}
	if s.silences != nil {
		if id, ok := s.silences.Silenced(a.Labels, at); ok {
			a.SuppressedBy = fmt.Sprintf("silence:%d", id)
		}
	}
	if a.SuppressedBy == "" && s.inhibitor != nil {
		if rule, ok := s.inhibitor.Inhibited(a); ok {
			a.SuppressedBy = "inhibit:" + rule
		}
	}
	a.IncidentID = 0
	got, _, err := bc.tx.UpsertAlert(a)
	if err != nil {
		return Outcome{}, err
	}
	la := &liveAlert{Team: a.Team, Origin: a.Origin, ID: got.ID, Fingerprint: a.Fingerprint, Labels: a.Labels, Severity: a.Severity, Suppressed: a.SuppressedBy}
	s.firing[a.Fingerprint] = la
	s.inhibitor.Fire(got)
	out := Outcome{AlertID: got.ID, Fingerprint: a.Fingerprint, SuppressedBy: a.SuppressedBy}
	if a.SuppressedBy != "" {
		return out, nil // kept and visible, but pages nobody
	}
	inc, err := s.attach(bc, got, d, at)
	if err != nil {
		return Outcome{}, err
	}
	la.IncidentID = inc.ID
	out.IncidentID = inc.ID
	return out, nil
}

// attach puts an alert on the open incident of its group, or opens one.
func (s *Service) attach(bc *batchCtx, a alert.Alert, d alert.Decision, at time.Time) (*incident.Incident, error) {
	key := d.GroupKey(a.Labels)
	if id, ok := s.groups[key]; ok {
		if inc, ok := s.open[id]; ok {
			if err := bc.tx.SetAlertIncident(a.ID, inc.ID); err != nil {
				return nil, err
			}
			inc.AlertCount++
			s.firingPer[inc.ID]++
			if severityRank(a.Severity) < severityRank(inc.Severity) {
				inc.Severity = a.Severity
			}
			if err := s.timeline(bc, inc.ID, at, "system", incident.KindAlertAttached, "alert attached: "+a.Title, map[string]any{"alert_id": a.ID, "fingerprint": a.Fingerprint}); err != nil {
				return nil, err
			}
			bc.dirty[inc.ID] = inc
			// A critical alert joining a group still waiting pages now.
			if a.Severity == "critical" && inc.Tier < 0 && inc.NextEscalationAt != nil && inc.NextEscalationAt.After(at) {
				t := at
				inc.NextEscalationAt = &t
				if err := s.escalateDue(bc, inc, at); err != nil {
					return nil, err
				}
			}
			return inc, nil
		}
	}
	inc := incident.Incident{
		Title: a.Title, Severity: a.Severity, Team: a.Team, Origin: a.Origin, Status: incident.StatusTriggered,
		Tier: -1, Policy: d.Policy, GroupKey: key, Service: a.Labels["service"], Labels: maps.Clone(a.Labels),
		Channels: append([]string{}, d.Channels...), TriggeredAt: at, AlertCount: 1,
	}
	if p, ok := s.policy(bc.ctx, d.Policy); ok {
		inc.PolicyID = p.ID
	}
	first := at.Add(d.GroupWait)
	if a.Severity == "critical" {
		first = at // critical alerts notify immediately
	}
	inc.NextEscalationAt = &first
	checkName := ""
	if len(a.Source) > 6 && a.Source[:6] == "check:" {
		checkName = a.Source[6:]
	}
	rb, hasRB := runbook.Select(s.runbooks(bc.ctx), checkName, a.Labels["rule_id"], a.Labels)
	if hasRB {
		inc.RunbookID = rb.ID
	}
	created, err := bc.tx.CreateIncident(inc)
	if err != nil {
		return nil, err
	}
	p := &created
	if err := bc.tx.SetAlertIncident(a.ID, p.ID); err != nil {
		return nil, err
	}
	p.AlertCount = 1 // the store counts attached alerts; mirror it
	s.open[p.ID] = p
	s.groups[key] = p.ID
	s.firingPer[p.ID]++
	// One entry records both the opening and its first alert: every row
	// on this path is paid on the single writer at intake rate.
	if err := s.timeline(bc, p.ID, at, "system", incident.KindCreated, fmt.Sprintf("incident opened by %s (team %s, route %s) with alert: %s", a.Source, p.Team, d.RouteID, a.Title),
		map[string]any{"policy": p.Policy, "group_key": key, "alert_id": a.ID, "fingerprint": a.Fingerprint}); err != nil {
		return nil, err
	}
	if hasRB {
		for i, item := range runbook.Checklist(rb.Markdown) {
			if _, err := bc.tx.AddTask(incident.Task{IncidentID: p.ID, Title: item, Position: i, FromRunbook: true}); err != nil {
				return nil, err
			}
		}
	}
	if !first.After(at) {
		if err := s.escalateDue(bc, p, at); err != nil {
			return nil, err
		}
	}
	bc.dirty[p.ID] = p
	return p, nil
}

func (s *Service) resolveFP(bc *batchCtx, fp string, at time.Time, actor string) (Outcome, error) {
	la, ok := s.firing[fp]
	if !ok {
		return Outcome{Fingerprint: fp, Noop: true}, nil
	}
	got, err := bc.tx.ResolveAlert(fp, at)
	if errors.Is(err, store.ErrNotFound) {
		delete(s.firing, fp)
		return Outcome{Fingerprint: fp, Noop: true}, nil
	}
	if err != nil {
		return Outcome{}, err
	}
	delete(s.firing, fp)
	s.inhibitor.Resolve(fp)
	out := Outcome{AlertID: got.ID, Fingerprint: fp, IncidentID: la.IncidentID}
	if la.IncidentID == 0 || la.Suppressed != "" {
		return out, nil
	}
	inc, ok := s.open[la.IncidentID]
	if !ok {
		return out, nil
	}
	s.firingPer[inc.ID]--
	if err := s.timeline(bc, inc.ID, at, actor, incident.KindAlertResolved, "alert resolved: "+got.Title, map[string]any{"alert_id": got.ID}); err != nil {
		return Outcome{}, err
	}
	if s.firingPer[inc.ID] <= 0 {
		if err := s.setStatus(bc, inc, incident.StatusResolved, at, "system", "all alerts resolved"); err != nil {
			return Outcome{}, err
		}
	}
	return out, nil
}

func (s *Service) ackFP(bc *batchCtx, fp string, at time.Time, actor string) (Outcome, error) {
	la, ok := s.firing[fp]
	if !ok {
		return Outcome{Fingerprint: fp, Noop: true}, nil
	}
	if err := bc.tx.AckAlert(la.ID, at); err != nil {
		return Outcome{}, err
	}
	out := Outcome{AlertID: la.ID, Fingerprint: fp, IncidentID: la.IncidentID}
	if inc, ok := s.open[la.IncidentID]; ok && inc.Status == incident.StatusTriggered {
		if actor == "" {
			actor = "integration"
		}
		if err := s.setStatus(bc, inc, incident.StatusAcknowledged, at, actor, "acknowledged by the sender"); err != nil {
			return Outcome{}, err
		}
	}
	return out, nil
}

// timeline appends one entry.
func (s *Service) timeline(bc *batchCtx, id int64, at time.Time, actor, kind, msg string, data map[string]any) error {
	_, err := bc.tx.AppendTimeline(incident.TimelineEntry{IncidentID: id, Time: at, Actor: actor, Kind: kind, Message: msg, Data: data})
	return err
}

// setStatus moves an incident through the workflow and records it.
func (s *Service) setStatus(bc *batchCtx, inc *incident.Incident, to string, at time.Time, actor, why string) error {
	if err := incident.CanTransition(inc.Status, to); err != nil {
		return err
	}
	from := inc.Status
	inc.Status = to
	t := at
	switch to {
	case incident.StatusAcknowledged:
		if inc.AcknowledgedAt == nil {
			inc.AcknowledgedAt = &t
		}
		if inc.Owner == "" && actor != "system" {
			inc.Owner = actor
		}
		inc.NextEscalationAt = nil
	case incident.StatusInvestigating:
		if inc.AcknowledgedAt == nil {
			inc.AcknowledgedAt = &t
		}
		inc.NextEscalationAt = nil
	case incident.StatusMitigated:
		inc.MitigatedAt = &t
		inc.NextEscalationAt = nil
	case incident.StatusResolved:
		inc.ResolvedAt = &t
		inc.NextEscalationAt = nil
	case incident.StatusClosed:
		inc.ClosedAt = &t
	case incident.StatusTriggered:
		// Reopened: the problem is back; escalation starts over.
		inc.ResolvedAt = nil
		inc.Tier = -1
		inc.EscalationRound = 0
		inc.NextEscalationAt = &t
	}
	msg := fmt.Sprintf("%s → %s", from, to)
	if why != "" {
		msg += ": " + why
	}
	if err := s.timeline(bc, inc.ID, at, actor, incident.KindStatus, msg, map[string]any{"from": from, "to": to}); err != nil {
		return err
	}
	bc.dirty[inc.ID] = inc
	if !incident.Open(to) {
		delete(s.open, inc.ID)
		if s.groups[inc.GroupKey] == inc.ID {
			delete(s.groups, inc.GroupKey)
		}
	} else {
		s.open[inc.ID] = inc
	}
	if to == incident.StatusResolved || to == incident.StatusAcknowledged {
		// Whoever got the page hears about the ack and the resolve.
		s.notifyPaged(bc, inc, to, at)
	}
	return nil
}
