package runbook

import (
	"slices"

	"github.com/nocsoc/nocsoc/internal/alert"
)

// Select picks the runbook for an incident. A runbook linked to the check
// name wins; failing that, one linked to the detection rule id; failing
// that, the runbook whose matchers (alert.ParseMatchers syntax) all match
// the labels, the one with the most matchers winning. Ties go to the smallest name, so the answer does
// not depend on the order of rbs. Runbooks with invalid matchers never
// match by labels. It returns false when no runbook applies.
func Select(rbs []Runbook, checkName, ruleID string, labels map[string]string) (Runbook, bool) {
	better := func(best *Runbook, r *Runbook) bool { return best == nil || r.Name < best.Name }

	if checkName != "" {
		var best *Runbook
		for i := range rbs {
			if slices.Contains(rbs[i].Checks, checkName) && better(best, &rbs[i]) {
				best = &rbs[i]
			}
		}
		if best != nil {
			return *best, true
		}
	}
	if ruleID != "" {
		var best *Runbook
		for i := range rbs {
			if slices.Contains(rbs[i].Rules, ruleID) && better(best, &rbs[i]) {
				best = &rbs[i]
			}
		}
		if best != nil {
			return *best, true
		}
	}
	var best *Runbook
	bestN := 0
	for i := range rbs {
		r := &rbs[i]
		if len(r.Matchers) == 0 {
			continue
		}
		ms, err := alert.ParseMatchers(r.Matchers)
		if err != nil || len(ms) == 0 || len(ms) < bestN || !alert.MatchAll(ms, labels) {
			continue
		}
		if len(ms) > bestN || better(best, r) {
			best, bestN = r, len(ms)
		}
	}
	if best != nil {
		return *best, true
	}
	return Runbook{}, false
}
