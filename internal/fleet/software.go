package fleet

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/store"
)

// SoftwareEndpoint is an endpoint with a given package version.
type SoftwareEndpoint struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
}

// SoftwareVersion is one version of a package and where it is installed.
type SoftwareVersion struct {
	Version   string             `json:"version"`
	Endpoints []SoftwareEndpoint `json:"endpoints"`
}

// Software is a package across the fleet. Status is "denied" (on the deny
// list and not excepted by the allow list), "allowed" (on the allow list)
// or "unlisted".
type Software struct {
	Name      string            `json:"name"`
	Status    string            `json:"status"`
	Endpoints int               `json:"endpoints"`
	Versions  []SoftwareVersion `json:"versions"`
}

// Software lists the packages installed on live endpoints, from their
// latest inventories: package → version → endpoints. query, when set,
// keeps packages whose name contains it.
func (s *Service) Software(ctx context.Context, query string) ([]Software, error) {
	eps, err := s.o.Store.Endpoints(ctx)
	if err != nil {
		return nil, err
	}
	rules, err := s.o.Store.SoftwareRules(ctx)
	if err != nil {
		return nil, err
	}
	query = strings.ToLower(query)
	type verKey struct{ name, version string }
	byVer := map[verKey][]SoftwareEndpoint{}
	for _, e := range eps {
		if e.RevokedAt != nil {
			continue
		}
		inv, err := s.Inventory(ctx, e.ID)
		if err != nil {
			return nil, err
		}
		if inv == nil {
			continue
		}
		seen := map[verKey]bool{}
		for _, p := range inv.Packages {
			if query != "" && !strings.Contains(strings.ToLower(p.Name), query) {
				continue
			}
			k := verKey{p.Name, p.Version}
			if seen[k] { // one package in two architectures
				continue
			}
			seen[k] = true
			byVer[k] = append(byVer[k], SoftwareEndpoint{ID: e.ID, Hostname: e.Hostname})
		}
	}
	byName := map[string]*Software{}
	for k, eps := range byVer {
		sw := byName[k.name]
		if sw == nil {
			st, _ := softwareStatus(rules, k.name)
			sw = &Software{Name: k.name, Status: st}
			byName[k.name] = sw
		}
		sw.Versions = append(sw.Versions, SoftwareVersion{Version: k.version, Endpoints: eps})
		sw.Endpoints += len(eps)
	}
	out := make([]Software, 0, len(byName))
	for _, sw := range byName {
		sort.Slice(sw.Versions, func(a, b int) bool { return sw.Versions[a].Version < sw.Versions[b].Version })
		out = append(out, *sw)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, nil
}

// softwareStatus says how the lists treat a package name: an allow entry
// excepts a package from the deny list. pattern is the deny pattern
// matched.
func softwareStatus(rules []store.SoftwareRule, name string) (status, pattern string) {
	var allowed bool
	for _, r := range rules {
		if ok, _ := path.Match(r.Pattern, name); !ok {
			continue
		}
		if r.List == store.SoftwareAllow {
			allowed = true
		} else if pattern == "" {
			pattern = r.Pattern
		}
	}
	switch {
	case allowed:
		return "allowed", ""
	case pattern != "":
		return "denied", pattern
	}
	return "unlisted", ""
}

// SoftwareRules lists the allow and deny lists.
func (s *Service) SoftwareRules(ctx context.Context) ([]store.SoftwareRule, error) {
	return s.o.Store.SoftwareRules(ctx)
}

func validPattern(p string) error {
	if _, err := path.Match(p, ""); err != nil {
		return &store.FieldError{Field: "pattern", Reason: fmt.Sprintf("%q is not a valid glob: %v", p, err)}
	}
	if strings.ContainsAny(p, "/ \t\n") {
		return &store.FieldError{Field: "pattern", Reason: fmt.Sprintf("%q: a package name pattern has no slashes or spaces", p)}
	}
	return nil
}

// CreateSoftwareRule adds an allow or deny entry (audited) and applies the
// lists to the fleet's latest inventories at once.
func (s *Service) CreateSoftwareRule(ctx context.Context, actor store.Actor, r store.SoftwareRule) (store.SoftwareRule, error) {
	if err := validPattern(r.Pattern); err != nil {
		return store.SoftwareRule{}, err
	}
	r, err := s.o.Store.CreateSoftwareRule(ctx, actor, r)
	if err != nil {
		return store.SoftwareRule{}, err
	}
	return r, s.reevaluateSoftware(ctx)
}

// UpdateSoftwareRule changes an entry and re-applies the lists.
func (s *Service) UpdateSoftwareRule(ctx context.Context, actor store.Actor, r store.SoftwareRule) (store.SoftwareRule, error) {
	if err := validPattern(r.Pattern); err != nil {
		return store.SoftwareRule{}, err
	}
	r, err := s.o.Store.UpdateSoftwareRule(ctx, actor, r)
	if err != nil {
		return store.SoftwareRule{}, err
	}
	return r, s.reevaluateSoftware(ctx)
}

// DeleteSoftwareRule removes an entry and re-applies the lists: denied
// packages no longer denied resolve their alerts.
func (s *Service) DeleteSoftwareRule(ctx context.Context, actor store.Actor, id int64) error {
	if err := s.o.Store.DeleteSoftwareRule(ctx, actor, id); err != nil {
		return err
	}
	return s.reevaluateSoftware(ctx)
}

// SoftwareViolations lists denied packages found (of one endpoint when
// endpointID is set).
func (s *Service) SoftwareViolations(ctx context.Context, endpointID string) ([]store.SoftwareViolation, error) {
	return s.o.Store.SoftwareViolations(ctx, endpointID)
}

func (s *Service) reevaluateSoftware(ctx context.Context) error {
	eps, err := s.o.Store.Endpoints(ctx)
	if err != nil {
		return err
	}
	for _, e := range eps {
		inv, err := s.Inventory(ctx, e.ID)
		if err != nil {
			return err
		}
		if e.RevokedAt != nil || inv == nil {
			inv = &agentproto.Inventory{} // nothing denied is left
		}
		if err := s.checkSoftware(ctx, e, inv); err != nil {
			return fmt.Errorf("endpoint %s: %w", e.ID, err)
		}
	}
	return nil
}

// SoftwareAlertFingerprint identifies the SOC alert of a denied package on
// an endpoint.
func SoftwareAlertFingerprint(endpointID, pkg string) string {
	return alert.Fingerprint(map[string]string{"alertname": "DeniedSoftware", "endpoint": endpointID, "package": pkg})
}

// checkSoftware compares inv with the deny list: a denied package new on
// the endpoint fires a SOC alert, one gone resolves it. Alerts go out
// before the new state is stored, so a failure is retried with the
// batch.
func (s *Service) checkSoftware(ctx context.Context, e store.Endpoint, inv *agentproto.Inventory) error {
	s.swMu.Lock()
	defer s.swMu.Unlock()
	rules, err := s.o.Store.SoftwareRules(ctx)
	if err != nil {
		return err
	}
	var cur []store.SoftwareViolation
	for _, p := range inv.Packages {
		if st, pat := softwareStatus(rules, p.Name); st == "denied" {
			cur = append(cur, store.SoftwareViolation{EndpointID: e.ID, Package: p.Name, Version: p.Version, Pattern: pat})
		}
	}
	prev, err := s.o.Store.SoftwareViolations(ctx, e.ID)
	if err != nil {
		return err
	}
	had := map[string]bool{}
	for _, v := range prev {
		had[v.Package] = true
	}
	has := map[string]bool{}
	now := s.o.Now().UTC()
	host := e.Hostname
	if inv.Hostname != "" {
		host = inv.Hostname
	}
	for _, v := range cur {
		if has[v.Package] {
			continue
		}
		has[v.Package] = true
		if had[v.Package] || s.o.Alerts == nil {
			continue
		}
		a := alert.Alert{
			Fingerprint: SoftwareAlertFingerprint(e.ID, v.Package),
			Status:      alert.StatusFiring,
			Team:        alert.TeamSOC,
			Origin:      alert.OriginHuman,
			Severity:    "high",
			Title:       fmt.Sprintf("Denied package %s installed on %s", v.Package, host),
			Description: fmt.Sprintf("Package %s %s on endpoint %s (%s) matches the software deny list entry %q.",
				v.Package, v.Version, host, e.ID, v.Pattern),
			Labels: map[string]string{"alertname": "DeniedSoftware", "endpoint": e.ID, "host": host,
				"package": v.Package, "version": v.Version, "pattern": v.Pattern},
			Source:      "agent",
			StartedAt:   now,
			LastSeenAt:  now,
			Occurrences: 1,
		}
		if err := s.o.Alerts.Fire(ctx, a); err != nil {
			return fmt.Errorf("fire denied software alert: %w", err)
		}
		s.log.Warn("denied package on endpoint", "endpoint", e.ID, "package", v.Package, "pattern", v.Pattern)
	}
	for _, v := range prev {
		if has[v.Package] || s.o.Alerts == nil {
			continue
		}
		if err := s.o.Alerts.Resolve(ctx, SoftwareAlertFingerprint(e.ID, v.Package), now); err != nil {
			return fmt.Errorf("resolve denied software alert: %w", err)
		}
	}
	if len(prev) == 0 && len(cur) == 0 {
		return nil
	}
	_, _, err = s.o.Store.ReplaceSoftwareViolations(ctx, e.ID, cur, now)
	return err
}

// SoftwareRule returns one list entry.
func (s *Service) SoftwareRule(ctx context.Context, id int64) (store.SoftwareRule, error) {
	return s.o.Store.SoftwareRule(ctx, id)
}
