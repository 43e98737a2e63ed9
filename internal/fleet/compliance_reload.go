package fleet

import (
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nocsoc/nocsoc/internal/compliance"
)

// policySources is where compliance policies come from. It starts from
// Options.Compliance and changes with SetPolicySources (config reload).
type policySources struct {
	// reloadMu serialises ReloadPolicies whole (load and re-evaluation),
	// so a reload that finds nothing new returns only after a concurrent
	// one has finished re-evaluating.
	reloadMu  sync.Mutex
	mu        sync.Mutex // serialises loads; guards the fields
	init      bool
	dirPath   string
	noBuiltin bool
	dir       *compliance.DirLoader
	// evalSig is the signature of the set the endpoints were last
	// evaluated against by a reload (or the first set loaded).
	evalSig [sha256.Size]byte
}

// SetPolicySources changes the policy directory ("" for none) and whether
// the built-in pack loads; ReloadPolicies applies them.
func (s *Service) SetPolicySources(dir string, noBuiltin bool) {
	src := &s.comp.src
	src.mu.Lock()
	defer src.mu.Unlock()
	src.initLocked(s)
	src.dirPath, src.noBuiltin = dir, noBuiltin
}

func (src *policySources) initLocked(s *Service) {
	if !src.init {
		src.dirPath, src.noBuiltin, src.init = s.o.Compliance.PolicyDir, s.o.Compliance.NoBuiltin, true
	}
	if src.dirPath == "" {
		src.dir = nil
	} else if src.dir == nil || src.dir.Dir() != src.dirPath {
		src.dir = compliance.NewDirLoader(src.dirPath, "directory", s.o.Now)
	}
}

// policySources returns whether the built-in pack is left out and the
// directory loader (nil without a directory).
func (s *Service) policySources() (bool, *compliance.DirLoader) {
	src := &s.comp.src
	src.mu.Lock()
	defer src.mu.Unlock()
	src.initLocked(s)
	return src.noBuiltin, src.dir
}

// loadPolicies (re)loads the built-in pack, the changed files of the
// policy directory and the uploaded policies, and returns the loaded
// set's signature. A directory file whose new
// content is refused, by the parser or because its ids clash with
// another policy, leaves its previous version in force.
func (s *Service) loadPolicies(ctx context.Context) ([sha256.Size]byte, []error) {
	src := &s.comp.src
	src.mu.Lock()
	defer src.mu.Unlock()
	src.initLocked(s)
	var dl compliance.DirLoad
	if src.dir != nil {
		dl = src.dir.Load()
	}
	pols, errs := s.readPolicies(ctx, nil, src.noBuiltin, dl.Policies, dl.Errors)
	set, setErrs := compliance.NewSet(pols)
	if src.dir != nil && len(setErrs) > 0 {
		in := map[*compliance.Policy]bool{}
		for _, p := range set.Policies {
			in[p] = true
		}
		changed := map[string]bool{}
		for _, n := range dl.Changed {
			changed[n] = true
		}
		reverted := false
		for _, p := range dl.Policies {
			if !in[p] && changed[filepath.Base(p.File)] && src.dir.Refuse(p, setError(setErrs, p.File)) {
				reverted = true
			}
		}
		if reverted {
			dirPols, dirErrs := src.dir.Current()
			pols, errs = s.readPolicies(ctx, nil, src.noBuiltin, dirPols, dirErrs)
			set, setErrs = compliance.NewSet(pols)
		}
	}
	errs = append(errs, setErrs...)
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
		s.log.Error("compliance policy refused", "err", err)
	}
	sig := setSignature(set)
	st := &s.comp
	st.mu.Lock()
	if !st.loaded {
		src.evalSig = sig
	}
	st.set, st.spec, st.errs, st.loaded = set, set.Spec().AgentSpec(), msgs, true
	st.mu.Unlock()
	s.log.Info("compliance policies loaded", "policies", len(set.Policies), "checks", len(set.Checks()), "refused", len(errs),
		"changed_files", strings.Join(dl.Changed, ","))
	return sig, errs
}

// setError finds the set's reason for refusing the policy of file.
func setError(errs []error, file string) error {
	for _, e := range errs {
		if strings.HasPrefix(e.Error(), file+":") {
			return e
		}
	}
	return fmt.Errorf("%s: refused by the policy set", file)
}

// setSignature identifies a policy set by its policies' sources and
// text, so an unchanged reload does not re-evaluate anything.
func setSignature(set *compliance.Set) [sha256.Size]byte {
	h := sha256.New()
	for _, p := range set.Policies {
		fmt.Fprintf(h, "%s\x00%s\x00%d\x00%s\x00", p.Source, p.File, len(p.Raw), p.Raw)
	}
	var out [sha256.Size]byte
	copy(out[:], h.Sum(nil))
	return out
}

// ReloadPolicies reloads the policies (config reload, a changed policy
// directory) and, when the loaded set differs from the one the endpoints
// were last evaluated against, re-evaluates every live endpoint from its
// stored facts, so results, scores and drift alerts follow added, changed
// and removed checks at once. It reports whether the set changed and the
// refusals (each file:line: reason).
func (s *Service) ReloadPolicies(ctx context.Context) (bool, []error) {
	src := &s.comp.src
	src.reloadMu.Lock()
	defer src.reloadMu.Unlock()
	sig, errs := s.loadPolicies(ctx)
	src.mu.Lock()
	changed := sig != src.evalSig
	src.evalSig = sig
	src.mu.Unlock()
	if !changed {
		return false, errs
	}
	n, err := s.Evaluate(ctx, "")
	if err != nil {
		s.log.Error("re-evaluate after policy change", "err", err)
		return true, errs
	}
	s.log.Info("compliance policies changed: endpoints re-evaluated", "endpoints", n)
	return true, errs
}

// WatchPolicies polls the policy directory every `every` and reloads when
// a file was added, changed (its content, not its modification time) or
// removed. It blocks until ctx ends.
func (s *Service) WatchPolicies(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, dir := s.policySources(); dir != nil && dir.Stale() {
			s.ReloadPolicies(ctx)
		}
	}
}
