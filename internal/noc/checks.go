package noc

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/monitor"
	"github.com/nocsoc/nocsoc/internal/schedule"
	"github.com/nocsoc/nocsoc/internal/store"
)

// CheckView is a check with its live status.
type CheckView struct {
	Spec   check.Spec
	Status monitor.Status
}

// Checks lists every check, sorted by name.
func (s *Service) Checks() []CheckView {
	s.mu.RLock()
	out := make([]CheckView, 0, len(s.specs))
	for _, c := range s.specs {
		out = append(out, CheckView{Spec: c})
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Spec.Name < out[j].Spec.Name })
	for i := range out {
		if st, ok := s.tracker.Status(out[i].Spec.Name); ok {
			out[i].Status = st
		}
	}
	return out
}

// Check returns one check; store.ErrNotFound when unknown.
func (s *Service) Check(name string) (CheckView, error) {
	s.mu.RLock()
	c, ok := s.specs[name]
	s.mu.RUnlock()
	if !ok {
		return CheckView{}, fmt.Errorf("check %q: %w", name, store.ErrNotFound)
	}
	v := CheckView{Spec: c}
	if st, ok := s.tracker.Status(name); ok {
		v.Status = st
	}
	return v, nil
}

// Spec returns the spec of a check.
func (s *Service) Spec(name string) (check.Spec, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.specs[name]
	return c, ok
}

// CreateCheck validates and stores a new API-managed check and starts it.
// For a push check it returns the heartbeat token, shown only once.
func (s *Service) CreateCheck(ctx context.Context, actor store.Actor, c check.Spec) (CheckView, string, error) {
	c.Provisioned = false
	c.Normalize()
	if err := c.Validate(); err != nil {
		return CheckView{}, "", err
	}
	var pushToken string
	if c.Type == check.TypePush {
		if c.Push.Token != "" {
			pushToken = c.Push.Token
		} else {
			p, _, err := auth.NewToken()
			if err != nil {
				return CheckView{}, "", err
			}
			pushToken = p
		}
		// The store registers the token's hash in the same transaction as
		// the check and keeps no plain copy.
		c.Push.Token = pushToken
	}
	s.mu.Lock()
	if _, exists := s.specs[c.Name]; exists {
		s.mu.Unlock()
		return CheckView{}, "", fmt.Errorf("check %q already exists: %w", c.Name, store.ErrConflict)
	}
	dyn := append(append([]check.Spec{}, s.dynamic...), c)
	if err := s.validateLocked(s.provisioned, dyn); err != nil {
		s.mu.Unlock()
		return CheckView{}, "", err
	}
	if err := s.st.CreateCheck(ctx, actor, c); err != nil {
		s.mu.Unlock()
		return CheckView{}, "", err
	}
	if c.Push != nil {
		c.Push.Token = ""
		dyn[len(dyn)-1] = c
	}
	err := s.applyLocked(s.provisioned, dyn)
	s.mu.Unlock()
	if err != nil {
		return CheckView{}, "", err
	}
	v, err := s.Check(c.Name)
	return v, pushToken, err
}

// UpdateCheck replaces an API-managed check.
func (s *Service) UpdateCheck(ctx context.Context, actor store.Actor, c check.Spec) (CheckView, error) {
	c.Provisioned = false
	c.Normalize()
	if err := c.Validate(); err != nil {
		return CheckView{}, err
	}
	if c.Push != nil {
		c.Push.Token = "" // the token is changed by recreating the check
	}
	s.mu.Lock()
	old, exists := s.specs[c.Name]
	if !exists {
		s.mu.Unlock()
		return CheckView{}, fmt.Errorf("check %q: %w", c.Name, store.ErrNotFound)
	}
	if old.Provisioned {
		s.mu.Unlock()
		return CheckView{}, fmt.Errorf("check %q is %w", c.Name, ErrProvisioned)
	}
	dyn := make([]check.Spec, 0, len(s.dynamic))
	for _, d := range s.dynamic {
		if d.Name == c.Name {
			d = c
		}
		dyn = append(dyn, d)
	}
	if err := s.validateLocked(s.provisioned, dyn); err != nil {
		s.mu.Unlock()
		return CheckView{}, err
	}
	if err := s.st.UpdateCheck(ctx, actor, c); err != nil {
		s.mu.Unlock()
		return CheckView{}, err
	}
	err := s.applyLocked(s.provisioned, dyn)
	s.mu.Unlock()
	if err != nil {
		return CheckView{}, err
	}
	return s.Check(c.Name)
}

// DeleteCheck removes an API-managed check; its firing alert is resolved.
// A check that others depend on cannot be deleted.
func (s *Service) DeleteCheck(ctx context.Context, actor store.Actor, name string) error {
	s.mu.Lock()
	old, exists := s.specs[name]
	if !exists {
		s.mu.Unlock()
		return fmt.Errorf("check %q: %w", name, store.ErrNotFound)
	}
	if old.Provisioned {
		s.mu.Unlock()
		return fmt.Errorf("check %q is %w", name, ErrProvisioned)
	}
	for _, c := range s.specs {
		for _, d := range c.DependsOn {
			if d == name {
				s.mu.Unlock()
				return fmt.Errorf("check %q depends on %q; remove that dependency first: %w", c.Name, name, store.ErrConflict)
			}
		}
	}
	dyn := make([]check.Spec, 0, len(s.dynamic))
	for _, d := range s.dynamic {
		if d.Name != name {
			dyn = append(dyn, d)
		}
	}
	if err := s.st.DeleteCheck(ctx, actor, name); err != nil {
		s.mu.Unlock()
		return err
	}
	if old.Type == check.TypePush {
		if err := s.st.DeletePushToken(ctx, name); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("delete push token", "check", name, "err", err)
		}
	}
	err := s.applyLocked(s.provisioned, dyn)
	s.mu.Unlock()
	s.resolveAlert(ctx, name, "check deleted")
	return err
}

// validateLocked validates a prospective set without installing it.
func (s *Service) validateLocked(prov, dyn []check.Spec) error {
	all := make([]check.Spec, 0, len(prov)+len(dyn))
	all = append(all, prov...)
	all = append(all, dyn...)
	if name, err := check.ValidateSet(all); err != nil {
		var fe *check.FieldError
		if errors.As(err, &fe) {
			return &check.FieldError{Field: fe.Field, Reason: fmt.Sprintf("%s (check %q)", fe.Reason, name)}
		}
		return err
	}
	return nil
}

// ErrDisabled is returned when a disabled check is asked to run.
var ErrDisabled = errors.New("check is disabled")

// RunNow runs a check at once.
func (s *Service) RunNow(name string) error {
	if c, ok := s.Spec(name); ok && c.Disabled {
		return fmt.Errorf("check %q: %w: enable it first", name, ErrDisabled)
	}
	if !s.sched.RunNow(name) {
		return fmt.Errorf("check %q: %w", name, store.ErrNotFound)
	}
	return nil
}

// Counts returns the number of checks in each state.
func (s *Service) Counts() map[check.State]int { return s.tracker.Counts() }

// SchedulerStats exposes the scheduler's counters.
func (s *Service) SchedulerStats() schedule.Stats { return s.sched.Stats() }
