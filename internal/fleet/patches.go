package fleet

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/store"
)

// maxPendingUpdates bounds one report's pending updates.
const maxPendingUpdates = 50000

// applyUpdates stores a batch's pending updates, keeping when each was
// first seen, and checks a batch's inventory against the software deny
// list (software.go).
func (s *Service) applyUpdates(ctx context.Context, e store.Endpoint, b agentproto.Batch) error {
	if b.Inventory != nil {
		if err := s.checkSoftware(ctx, e, b.Inventory); err != nil {
			return fmt.Errorf("software lists: %w", err)
		}
	}
	u := b.Updates
	if u == nil {
		return nil
	}
	if err := validateUpdates(u); err != nil {
		return err
	}
	pending := make([]store.PendingUpdate, 0, len(u.Pending))
	for _, p := range u.Pending {
		pending = append(pending, store.PendingUpdate{Name: p.Name, Arch: p.Arch, CurrentVersion: p.CurrentVersion,
			Version: p.Version, Origin: p.Origin, Security: p.Security})
	}
	now := s.o.Now().UTC()
	at := u.CollectedAt.UTC()
	if at.IsZero() || at.After(now) {
		at = now
	}
	errMsg := u.Error
	if len(errMsg) > 4096 {
		errMsg = errMsg[:4096]
	}
	return s.o.Store.ReplaceUpdates(ctx, store.UpdateState{EndpointID: e.ID, Manager: u.Manager, CollectedAt: at,
		RebootRequired: u.RebootRequired, RebootPackages: u.RebootPackages, Error: errMsg}, pending, at)
}

// validateUpdates checks a batch's updates before anything of the batch
// is applied.
func validateUpdates(u *agentproto.Updates) error {
	if u == nil {
		return nil
	}
	if len(u.Pending) > maxPendingUpdates {
		return &store.FieldError{Field: "updates.pending", Reason: fmt.Sprintf("at most %d updates (got %d)", maxPendingUpdates, len(u.Pending))}
	}
	for i, p := range u.Pending {
		if p.Name == "" || len(p.Name) > maxNameLen || p.Version == "" || len(p.Version) > maxNameLen ||
			len(p.Arch) > 64 || len(p.CurrentVersion) > maxNameLen || len(p.Origin) > 1000 {
			return &store.FieldError{Field: fmt.Sprintf("updates.pending[%d]", i), Reason: "name and version are required, 1-200 characters; arch up to 64, origin up to 1000"}
		}
	}
	if len(u.RebootPackages) > maxPendingUpdates || len(u.Manager) > 32 {
		return &store.FieldError{Field: "updates", Reason: "too many reboot packages or an overlong manager name"}
	}
	return nil
}

// EndpointUpdates returns what the endpoint last reported about its
// updates (nil when it never did) and its pending updates.
func (s *Service) EndpointUpdates(ctx context.Context, id string) (*store.UpdateState, []store.PendingUpdate, error) {
	return s.o.Store.EndpointUpdates(ctx, id)
}

// PatchEndpoint is one endpoint missing a security update.
type PatchEndpoint struct {
	EndpointID     string    `json:"endpoint_id"`
	Hostname       string    `json:"hostname"`
	CurrentVersion string    `json:"current_version,omitempty"`
	Version        string    `json:"version"`
	Since          time.Time `json:"since"`
	Days           float64   `json:"days"`
}

// Patch is a security update and the endpoints missing it.
type Patch struct {
	Package   string          `json:"package"`
	Arch      string          `json:"arch,omitempty"`
	Origin    string          `json:"origin,omitempty"`
	Oldest    time.Time       `json:"oldest"`
	Endpoints []PatchEndpoint `json:"endpoints"`
}

// Patches lists the fleet's missing security updates, oldest first: which
// endpoints miss which update and since when.
func (s *Service) Patches(ctx context.Context) ([]Patch, error) {
	ups, err := s.o.Store.PendingSecurityUpdates(ctx)
	if err != nil {
		return nil, err
	}
	now := s.o.Now().UTC()
	idx := map[string]int{}
	var out []Patch
	for _, u := range ups {
		k := u.Name + "\x00" + u.Arch
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, Patch{Package: u.Name, Arch: u.Arch, Origin: u.Origin})
		}
		since := u.FirstSeen
		if u.SecuritySince != nil {
			since = *u.SecuritySince
		}
		out[i].Endpoints = append(out[i].Endpoints, PatchEndpoint{EndpointID: u.EndpointID, Hostname: u.Hostname,
			CurrentVersion: u.CurrentVersion, Version: u.Version, Since: since, Days: float64(now.Sub(since).Milliseconds()) / 86400000})
		if out[i].Oldest.IsZero() || since.Before(out[i].Oldest) {
			out[i].Oldest = since
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Oldest.Before(out[b].Oldest) })
	return out, nil
}

// Compliance is the fleet's patch compliance: the share of reporting
// endpoints with no security update pending longer than Days days.
type Compliance struct {
	Days int `json:"days"`
	// Endpoints counts live endpoints; Reporting those that sent their
	// updates at least once (the others are Unknown).
	Endpoints    int `json:"endpoints"`
	Reporting    int `json:"reporting"`
	Unknown      int `json:"unknown"`
	Compliant    int `json:"compliant"`
	NonCompliant int `json:"non_compliant"`
	// Percent is Compliant / Reporting × 100, or null when no endpoint
	// reports.
	Percent *float64  `json:"percent"`
	At      time.Time `json:"at"`
}

// PatchCompliance computes the compliance for a grace of days days.
func (s *Service) PatchCompliance(ctx context.Context, days int) (Compliance, error) {
	if days < 0 || days > 3650 {
		return Compliance{}, &store.FieldError{Field: "days", Reason: fmt.Sprintf("must be between 0 and 3650 (got %d)", days)}
	}
	now := s.o.Now().UTC()
	total, reporting, late, err := s.o.Store.PatchCompliance(ctx, now.Add(-time.Duration(days)*24*time.Hour))
	if err != nil {
		return Compliance{}, err
	}
	c := Compliance{Days: days, Endpoints: total, Reporting: reporting, Unknown: total - reporting,
		Compliant: reporting - late, NonCompliant: late, At: now}
	if reporting > 0 {
		p := float64(c.Compliant) * 100 / float64(reporting)
		c.Percent = &p
	}
	return c, nil
}
