package noc

import (
	"context"
	"fmt"
	"sort"

	"github.com/nocsoc/nocsoc/internal/maintenance"
	"github.com/nocsoc/nocsoc/internal/store"
)

// Windows lists every maintenance window, provisioned first.
func (s *Service) Windows() []maintenance.Window {
	s.mu.RLock()
	out := append([]maintenance.Window{}, s.windowList...)
	s.mu.RUnlock()
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Provisioned != out[j].Provisioned {
			return out[i].Provisioned
		}
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Window returns one API-managed window by id.
func (s *Service) Window(id int64) (maintenance.Window, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, w := range s.windowList {
		if !w.Provisioned && w.ID == id {
			return w, nil
		}
	}
	return maintenance.Window{}, fmt.Errorf("maintenance window %d: %w", id, store.ErrNotFound)
}

// CreateWindow validates, stores and activates a window.
func (s *Service) CreateWindow(ctx context.Context, actor store.Actor, w maintenance.Window) (maintenance.Window, error) {
	w.Provisioned = false
	w.CreatedBy = actor.Name
	w.CreatedAt = s.now().UTC()
	if err := w.Validate(); err != nil {
		return maintenance.Window{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	created, err := s.st.CreateWindow(ctx, actor, w)
	if err != nil {
		return maintenance.Window{}, err
	}
	dyn := append(s.dynamicWindowsLocked(), created)
	if err := s.setWindowsLocked(s.provWindows, dyn); err != nil {
		return maintenance.Window{}, err
	}
	return created, nil
}

// UpdateWindow replaces a window.
func (s *Service) UpdateWindow(ctx context.Context, actor store.Actor, w maintenance.Window) (maintenance.Window, error) {
	w.Provisioned = false
	if err := w.Validate(); err != nil {
		return maintenance.Window{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var found bool
	dyn := s.dynamicWindowsLocked()
	for i := range dyn {
		if dyn[i].ID == w.ID {
			w.CreatedBy, w.CreatedAt = dyn[i].CreatedBy, dyn[i].CreatedAt
			found = true
		}
	}
	if !found {
		return maintenance.Window{}, fmt.Errorf("maintenance window %d: %w", w.ID, store.ErrNotFound)
	}
	updated, err := s.st.UpdateWindow(ctx, actor, w)
	if err != nil {
		return maintenance.Window{}, err
	}
	for i := range dyn {
		if dyn[i].ID == w.ID {
			dyn[i] = updated
		}
	}
	if err := s.setWindowsLocked(s.provWindows, dyn); err != nil {
		return maintenance.Window{}, err
	}
	return updated, nil
}

// DeleteWindow removes a window.
func (s *Service) DeleteWindow(ctx context.Context, actor store.Actor, id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.st.DeleteWindow(ctx, actor, id); err != nil {
		return err
	}
	var dyn []maintenance.Window
	for _, w := range s.dynamicWindowsLocked() {
		if w.ID != id {
			dyn = append(dyn, w)
		}
	}
	return s.setWindowsLocked(s.provWindows, dyn)
}
