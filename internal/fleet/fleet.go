// Package fleet owns the server side of endpoint agents: enrollment
// tokens, enrollment, heartbeats and unresponsive detection, applying the
// batches agents report (metrics to the event store, inventory changes to
// the SOC pipeline as events) exactly once, and revocation.
package fleet

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/event"
	"github.com/nocsoc/nocsoc/internal/eventstore"
	"github.com/nocsoc/nocsoc/internal/store"
)

// AlertSink receives the NOC alerts of unresponsive endpoints.
type AlertSink interface {
	Fire(ctx context.Context, a alert.Alert) error
	Resolve(ctx context.Context, fingerprint string, at time.Time) error
}

// EventSink receives inventory changes as events (the SOC pipeline).
type EventSink interface {
	Write(ctx context.Context, evs []event.Event) error
}

// MetricStore keeps endpoint metric samples.
type MetricStore interface {
	AppendMetrics(ctx context.Context, rows []eventstore.MetricSample) error
	MetricSamples(ctx context.Context, f eventstore.MetricFilter) ([]eventstore.MetricSample, error)
}

// Errors the HTTP layer maps to statuses.
var (
	// ErrUnauthorized: unknown or revoked credential, or a refused
	// enrollment token (401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: the request names another agent than its credential
	// (403).
	ErrForbidden = errors.New("forbidden")
)

// Options configures the service.
type Options struct {
	Store   *store.Store
	Metrics MetricStore
	Alerts  AlertSink
	Events  EventSink
	Logger  *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// CheckEvery is how often Run looks for unresponsive endpoints;
	// default 30s.
	CheckEvery time.Duration
	// OnJobResult, when set, is called after a job reaches a final status
	// (a result stored, or expired or canceled) (jobs.go).
	OnJobResult func(ctx context.Context, j store.Job)
	// Compliance configures policy checks on endpoints (facts.go).
	Compliance ComplianceOptions
}

// Service is the fleet service. It is safe for concurrent use.
type Service struct {
	o   Options
	log *slog.Logger
	// applyMu serialises batch application, so that two deliveries of the
	// same batch cannot both pass the duplicate check.
	applyMu sync.Mutex
	// comp holds the loaded compliance policies (facts.go).
	comp complianceState
	// waiters wakes agents' job polls (jobs.go); swMu serialises software
	// list evaluation (software.go).
	waiters jobWaiters
	swMu    sync.Mutex
	// ops holds threshold, forecast and root-cause state (thresholds.go).
	ops fleetOps
}

// New returns the service.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CheckEvery <= 0 {
		o.CheckEvery = 30 * time.Second
	}
	return &Service{o: o, log: o.Logger.With("component", "fleet")}
}

// Token lifetimes.
const (
	DefaultTokenTTL = 24 * time.Hour
	MaxTokenTTL     = 30 * 24 * time.Hour
)

func hashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func randomSecret(prefix string) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// CreateEnrollmentToken makes a single-use token valid for ttl (0 means
// DefaultTokenTTL). The plain token is returned once and never stored.
func (s *Service) CreateEnrollmentToken(ctx context.Context, actor store.Actor, ttl time.Duration) (string, store.EnrollmentToken, error) {
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	if ttl < time.Minute || ttl > MaxTokenTTL {
		return "", store.EnrollmentToken{}, &store.FieldError{Field: "ttl", Reason: fmt.Sprintf("must be between 1m and %s (got %s)", MaxTokenTTL, ttl)}
	}
	plain := randomSecret("nse_")
	now := s.o.Now().UTC()
	t, err := s.o.Store.CreateEnrollmentToken(ctx, actor, store.EnrollmentToken{
		Hash: hashSecret(plain), Prefix: plain[:8], CreatedAt: now, ExpiresAt: now.Add(ttl)})
	if err != nil {
		return "", store.EnrollmentToken{}, err
	}
	return plain, t, nil
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

var uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// Enroll exchanges an enrollment token for an agent id and credential.
func (s *Service) Enroll(ctx context.Context, req agentproto.EnrollRequest, remote string) (agentproto.EnrollResponse, error) {
	switch {
	case req.Token == "":
		return agentproto.EnrollResponse{}, &store.FieldError{Field: "token", Reason: "is required"}
	case strings.TrimSpace(req.Hostname) == "" || len(req.Hostname) > 255:
		return agentproto.EnrollResponse{}, &store.FieldError{Field: "hostname", Reason: "must be 1-255 characters"}
	}
	if err := agentproto.ValidateLabels(req.Labels); err != nil {
		return agentproto.EnrollResponse{}, &store.FieldError{Field: "labels", Reason: err.Error()}
	}
	cred := randomSecret(agentproto.CredentialPrefix)
	e, err := s.o.Store.EnrollEndpoint(ctx, hashSecret(req.Token), store.Endpoint{
		ID: newID(), CredentialHash: hashSecret(cred), Hostname: req.Hostname, OS: req.OS, Platform: req.Platform,
		Kernel: req.Kernel, Arch: req.Arch, AgentVersion: req.AgentVersion, Remote: remote, AgentLabels: req.Labels,
	}, s.o.Now().UTC())
	if errors.Is(err, store.ErrEnrollmentRefused) {
		return agentproto.EnrollResponse{}, fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	if err != nil {
		return agentproto.EnrollResponse{}, err
	}
	s.log.Info("endpoint enrolled", "endpoint", e.ID, "hostname", e.Hostname, "remote", remote)
	return agentproto.EnrollResponse{AgentID: e.ID, Credential: cred}, nil
}

// Authenticate returns the live endpoint holding credential.
func (s *Service) Authenticate(ctx context.Context, credential string) (store.Endpoint, error) {
	if credential == "" {
		return store.Endpoint{}, fmt.Errorf("%w: send Authorization: Bearer <agent credential>", ErrUnauthorized)
	}
	e, err := s.o.Store.EndpointByCredential(ctx, hashSecret(credential))
	if errors.Is(err, store.ErrNotFound) {
		return store.Endpoint{}, fmt.Errorf("%w: unknown agent credential", ErrUnauthorized)
	}
	if err != nil {
		return store.Endpoint{}, err
	}
	if e.RevokedAt != nil {
		return store.Endpoint{}, fmt.Errorf("%w: agent %s was revoked", ErrUnauthorized, e.ID)
	}
	return e, nil
}

// Heartbeat records that e is alive; an endpoint coming back from
// unresponsive resolves its alert.
func (s *Service) Heartbeat(ctx context.Context, e store.Endpoint, hb agentproto.Heartbeat, remote string) error {
	if hb.AgentID != e.ID {
		return fmt.Errorf("%w: agent_id %q does not match the credential's agent", ErrForbidden, hb.AgentID)
	}
	if hb.IntervalMS <= 0 || hb.IntervalMS > int64(24*time.Hour/time.Millisecond) {
		return &store.FieldError{Field: "interval_ms", Reason: fmt.Sprintf("must be between 1 and 86400000 (got %d)", hb.IntervalMS)}
	}
	if err := agentproto.ValidateLabels(hb.Labels); err != nil {
		return &store.FieldError{Field: "labels", Reason: err.Error()}
	}
	now := s.o.Now().UTC()
	prev, err := s.o.Store.RecordHeartbeat(ctx, e.ID, store.Heartbeat{At: now, IntervalMS: hb.IntervalMS, Hostname: hb.Hostname,
		Remote: remote, Buffered: int64(hb.Buffered), Dropped: int64(min(hb.Dropped, 1<<62)), Labels: hb.Labels})
	if err != nil {
		return err
	}
	if prev == store.EndpointUnresponsive && s.o.Alerts != nil {
		s.log.Info("endpoint responsive again", "endpoint", e.ID, "hostname", e.Hostname)
		if err := s.o.Alerts.Resolve(ctx, AlertFingerprint(e.ID), now); err != nil {
			return fmt.Errorf("resolve unresponsive alert: %w", err)
		}
		s.releaseEndpoint(ctx, e) // rootcause.go
	}
	return nil
}

// AlertFingerprint identifies an endpoint's unresponsive alert.
func AlertFingerprint(endpointID string) string {
	return alert.Fingerprint(map[string]string{"alertname": "EndpointUnresponsive", "endpoint": endpointID})
}

// Run checks for unresponsive endpoints every CheckEvery until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.o.CheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if err := s.CheckUnresponsive(ctx, s.o.Now()); err != nil && ctx.Err() == nil {
				s.log.Error("check unresponsive endpoints", "err", err)
			}
			if err := s.expireJobs(ctx, s.o.Now()); err != nil && ctx.Err() == nil {
				s.log.Error("expire jobs", "err", err)
			}
			if err := s.CheckBackups(ctx, s.o.Now()); err != nil && ctx.Err() == nil {
				s.log.Error("check missed backups", "err", err) // backups.go
			}
		}
	}
}

// CheckUnresponsive marks endpoints that missed three heartbeats before
// now and raises a NOC alert for each.
func (s *Service) CheckUnresponsive(ctx context.Context, now time.Time) error {
	eps, err := s.o.Store.MarkUnresponsive(ctx, now.UTC())
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range eps {
		s.log.Warn("endpoint unresponsive", "endpoint", e.ID, "hostname", e.Hostname, "last_seen", e.LastSeenAt)
		if s.o.Alerts == nil {
			continue
		}
		labels := map[string]string{"alertname": "EndpointUnresponsive", "endpoint": e.ID, "host": e.Hostname}
		a := alert.Alert{
			Fingerprint: AlertFingerprint(e.ID),
			Status:      alert.StatusFiring,
			Team:        alert.TeamNOC,
			Origin:      alert.OriginNatural,
			Severity:    "critical",
			Title:       fmt.Sprintf("Endpoint %s is unresponsive", e.Hostname),
			Description: fmt.Sprintf("No heartbeat from agent %s (%s) since %s: three intervals of %s missed.",
				e.ID, e.Hostname, e.LastSeenAt.Format(time.RFC3339), time.Duration(e.IntervalMS)*time.Millisecond),
			Labels:      labels,
			Source:      "agent",
			StartedAt:   now,
			LastSeenAt:  now,
			Occurrences: 1,
		}
		if err := s.o.Alerts.Fire(ctx, a); err != nil {
			errs = append(errs, fmt.Errorf("fire unresponsive alert for %s: %w", e.ID, err))
		}
		s.attributeEndpoint(ctx, e) // rootcause.go
	}
	return errors.Join(errs...)
}

// Batch limits.
const (
	maxSamples   = 100000
	maxNameLen   = 200
	maxLabelsLen = 64
)

// ApplyBatch applies a batch once: metric samples to the metric store,
// inventory changes to the event sink, then the batch id is recorded. A
// batch id already recorded is answered as a duplicate without applying.
// A crash between writing the samples and recording the id would make the
// replay apply them again; that window is one transaction long.
func (s *Service) ApplyBatch(ctx context.Context, e store.Endpoint, b agentproto.Batch) (duplicate bool, err error) {
	if err := validateBatch(e, b); err != nil {
		return false, err
	}
	// An agent that goes away mid-request (killed, timed out) must not
	// cut the application in half: the parts written before the batch id
	// is recorded would be applied again by the replay.
	ctx = context.WithoutCancel(ctx)
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	done, err := s.o.Store.BatchApplied(ctx, e.ID, b.BatchID)
	if err != nil {
		return false, err
	}
	if done {
		return true, s.o.Store.CountDuplicate(ctx, e.ID)
	}
	rows := make([]eventstore.MetricSample, len(b.Metrics))
	for i, m := range b.Metrics {
		rows[i] = eventstore.MetricSample{Time: m.Time, Endpoint: e.ID, Name: m.Name, Labels: labelString(m.Labels), Value: m.Value}
		if rows[i].Time.IsZero() {
			rows[i].Time = b.SentAt
		}
	}
	if s.o.Metrics != nil {
		if err := s.o.Metrics.AppendMetrics(ctx, rows); err != nil {
			return false, err
		}
	}
	var invJSON []byte
	if b.Inventory != nil {
		if invJSON, err = json.Marshal(b.Inventory); err != nil {
			return false, fmt.Errorf("encode inventory: %w", err)
		}
		prevJSON, err := s.o.Store.EndpointInventory(ctx, e.ID)
		if err != nil {
			return false, err
		}
		// The first inventory is the baseline, not a burst of changes.
		if prevJSON != nil && s.o.Events != nil {
			var prev agentproto.Inventory
			if err := json.Unmarshal(prevJSON, &prev); err != nil {
				s.log.Warn("stored inventory unreadable; taking the new one as baseline", "endpoint", e.ID, "err", err)
			} else if evs := Diff(e.ID, prev, *b.Inventory, s.o.Now().UTC()); len(evs) > 0 {
				if err := s.o.Events.Write(ctx, evs); err != nil {
					return false, fmt.Errorf("inventory events: %w", err)
				}
			}
		}
	}
	if err := s.applyExtensions(ctx, e, b); err != nil {
		return false, err
	}
	dup, err := s.o.Store.RecordBatch(ctx, e.ID, store.AppliedBatch{BatchID: b.BatchID, Seq: int64(b.Seq), Samples: int64(len(rows)),
		Inventory: invJSON, At: s.o.Now().UTC()})
	if err == nil && !dup {
		s.afterBatch(ctx, e, b) // thresholds.go
	}
	return dup, err
}

func validateBatch(e store.Endpoint, b agentproto.Batch) error {
	switch {
	case b.AgentID != e.ID:
		return fmt.Errorf("%w: agent_id %q does not match the credential's agent", ErrForbidden, b.AgentID)
	case !uuidRe.MatchString(b.BatchID):
		return &store.FieldError{Field: "batch_id", Reason: "must be a lowercase UUID"}
	case b.Seq == 0 || b.Seq > 1<<62:
		return &store.FieldError{Field: "seq", Reason: "must be a positive integer"}
	case len(b.Metrics) > maxSamples:
		return &store.FieldError{Field: "metrics", Reason: fmt.Sprintf("at most %d samples per batch (got %d)", maxSamples, len(b.Metrics))}
	}
	for i, m := range b.Metrics {
		if m.Name == "" || len(m.Name) > maxNameLen {
			return &store.FieldError{Field: fmt.Sprintf("metrics[%d].name", i), Reason: fmt.Sprintf("must be 1-%d characters", maxNameLen)}
		}
		if len(m.Labels) > maxLabelsLen {
			return &store.FieldError{Field: fmt.Sprintf("metrics[%d].labels", i), Reason: fmt.Sprintf("at most %d labels", maxLabelsLen)}
		}
	}
	if err := validateBackups(b.Backups); err != nil { // backups.go
		return err
	}
	if err := validateFiles(b.Files); err != nil { // fim.go
		return err
	}
	if err := validateUpdates(b.Updates); err != nil { // patches.go
		return err
	}
	return nil
}

// labelString renders labels as "k=v,k2=v2" with sorted keys.
func labelString(l map[string]string) string {
	if len(l) == 0 {
		return ""
	}
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for i, k := range keys {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(k + "=" + l[k])
	}
	return sb.String()
}

// Endpoints lists the endpoints.
func (s *Service) Endpoints(ctx context.Context) ([]store.Endpoint, error) {
	return s.o.Store.Endpoints(ctx)
}

// Endpoint returns one endpoint.
func (s *Service) Endpoint(ctx context.Context, id string) (store.Endpoint, error) {
	return s.o.Store.Endpoint(ctx, id)
}

// Inventory returns an endpoint's latest inventory (nil when none yet).
func (s *Service) Inventory(ctx context.Context, id string) (*agentproto.Inventory, error) {
	raw, err := s.o.Store.EndpointInventory(ctx, id)
	if err != nil || raw == nil {
		return nil, err
	}
	var inv agentproto.Inventory
	if err := json.Unmarshal(raw, &inv); err != nil {
		return nil, fmt.Errorf("endpoint %s inventory: %w", id, err)
	}
	return &inv, nil
}

// Metrics returns an endpoint's samples.
func (s *Service) Metrics(ctx context.Context, f eventstore.MetricFilter) ([]eventstore.MetricSample, error) {
	if _, err := s.o.Store.Endpoint(ctx, f.Endpoint); err != nil {
		return nil, err
	}
	if s.o.Metrics == nil {
		return nil, nil
	}
	return s.o.Metrics.MetricSamples(ctx, f)
}

// Revoke revokes an endpoint at once: its next request is refused. An
// open unresponsive alert is resolved, since nobody expects it back.
func (s *Service) Revoke(ctx context.Context, actor store.Actor, id string) (store.Endpoint, error) {
	before, err := s.o.Store.Endpoint(ctx, id)
	if err != nil {
		return store.Endpoint{}, err
	}
	now := s.o.Now().UTC()
	e, err := s.o.Store.RevokeEndpoint(ctx, actor, id, now)
	if err != nil {
		return store.Endpoint{}, err
	}
	if before.Status == store.EndpointUnresponsive && s.o.Alerts != nil {
		if err := s.o.Alerts.Resolve(ctx, AlertFingerprint(id), now); err != nil {
			s.log.Warn("resolve alert of revoked endpoint", "endpoint", id, "err", err)
		}
		s.releaseEndpoint(ctx, before) // rootcause.go
	}
	s.log.Info("endpoint revoked", "endpoint", id, "by", actor.Name)
	return e, nil
}
