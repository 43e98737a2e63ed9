package compliance

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// DirLoader loads a directory of policy files again and again (at start,
// on config reload, when polling sees a change) and remembers per file
// the content it last read and the last version that loaded. A file whose
// new content is refused leaves its previous version in force, with the
// refusal reported on every load until the file changes again; the other
// files load as usual. It is safe for concurrent use.
type DirLoader struct {
	dir    string
	source string
	now    func() time.Time

	mu    sync.Mutex
	files map[string]*dirFile // by file name
	read  bool                // Load has run once
}

type dirFile struct {
	sum      [sha256.Size]byte
	policy   *Policy // in force: the last version that loaded; nil if none did
	loadedAt time.Time
	prev     *Policy // what policy replaced at the last successful load (for Refuse)
	prevAt   time.Time
	errs     []error // why the current content is refused; nil when it loaded
}

// NewDirLoader loads dir's *.yml and *.yaml files (not recursive) as
// policies of the given source ("directory"). now stamps versions for
// messages; nil means time.Now.
func NewDirLoader(dir, source string, now func() time.Time) *DirLoader {
	if now == nil {
		now = time.Now
	}
	return &DirLoader{dir: dir, source: source, now: now, files: map[string]*dirFile{}}
}

// Dir is the directory loaded.
func (l *DirLoader) Dir() string { return l.dir }

// DirLoad is the outcome of one Load.
type DirLoad struct {
	// Policies in force, in file name order: each file's current version,
	// or its previous one when the current content is refused.
	Policies []*Policy
	// Errors are the refusals, every one as file:line: reason.
	Errors []error
	// Changed names the files added, changed or removed since the
	// previous Load (all files at the first).
	Changed []string
}

// Load reads the directory and parses the files whose content changed.
// A directory that cannot be read keeps every policy in force and
// reports why.
func (l *DirLoader) Load() DirLoad {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out DirLoad
	names, err := l.list()
	if err != nil {
		out.Errors = append(out.Errors, fmt.Errorf("read policies %s: %w (the policies loaded before stay in force)", l.dir, err))
		out.Policies, out.Errors = l.current(out.Errors)
		return out
	}
	seen := map[string]bool{}
	for _, name := range names {
		seen[name] = true
		path := filepath.Join(l.dir, name)
		src, err := readPolicyFile(path)
		f := l.files[name]
		if err != nil {
			// Unreadable now (being replaced, permissions): keep what is
			// in force and say so; it is not a change.
			if f == nil {
				f = &dirFile{}
				l.files[name] = f
				out.Changed = append(out.Changed, name)
			}
			f.errs = []error{fmt.Errorf("read policy %s: %w", path, err)}
			continue
		}
		sum := sha256.Sum256(src)
		if f != nil && f.sum == sum && l.read {
			continue
		}
		if f == nil {
			f = &dirFile{}
			l.files[name] = f
		}
		out.Changed = append(out.Changed, name)
		f.sum = sum
		p, err := ParsePolicy(path, src, l.source)
		if err != nil {
			f.errs = unjoinErrs(err)
			if f.policy != nil {
				f.errs = append(f.errs, fmt.Errorf("%s: refused; the version loaded at %s stays in force", path,
					f.loadedAt.UTC().Format(time.RFC3339)))
			}
			continue
		}
		f.prev, f.prevAt = f.policy, f.loadedAt
		f.policy, f.loadedAt, f.errs = p, l.now(), nil
	}
	for name := range l.files {
		if !seen[name] {
			delete(l.files, name)
			out.Changed = append(out.Changed, name)
		}
	}
	l.read = true
	sort.Strings(out.Changed)
	out.Policies, out.Errors = l.current(out.Errors)
	return out
}

// Current returns the policies in force and the refusals, without
// reading the directory.
func (l *DirLoader) Current() ([]*Policy, []error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.current(nil)
}

func (l *DirLoader) current(errs []error) ([]*Policy, []error) {
	names := make([]string, 0, len(l.files))
	for n := range l.files {
		names = append(names, n)
	}
	sort.Strings(names)
	var pols []*Policy
	for _, n := range names {
		f := l.files[n]
		errs = append(errs, f.errs...)
		if f.policy != nil {
			pols = append(pols, f.policy)
		}
	}
	return pols, errs
}

// Refuse undoes the last load of the file p came from, because the
// policy set refused p (its id or a check id clashes with another
// policy): the previous version, if any, is in force again and reason is
// reported until the file changes. It reports whether p was in force.
func (l *DirLoader) Refuse(p *Policy, reason error) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range l.files {
		if f.policy != p {
			continue
		}
		f.policy, f.loadedAt = f.prev, f.prevAt
		f.prev = nil
		f.errs = []error{reason}
		if f.policy != nil {
			f.errs = append(f.errs, fmt.Errorf("%s: refused; the version loaded at %s stays in force", p.File,
				f.loadedAt.UTC().Format(time.RFC3339)))
		}
		return true
	}
	return false
}

// Stale reports whether a Load would find a file added, changed or
// removed. It reads the files: content decides, not modification times
// (a quick rewrite of the same size can keep both mtime and size).
func (l *DirLoader) Stale() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.read {
		return true
	}
	names, err := l.list()
	if err != nil {
		return false // Load would keep everything: nothing to do
	}
	if len(names) != len(l.files) {
		return true
	}
	for _, name := range names {
		f, ok := l.files[name]
		if !ok {
			return true
		}
		src, err := readPolicyFile(filepath.Join(l.dir, name))
		if err != nil {
			continue
		}
		if sha256.Sum256(src) != f.sum {
			return true
		}
	}
	return false
}

func (l *DirLoader) list() ([]string, error) {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !(strings.HasSuffix(name, ".yml") || strings.HasSuffix(name, ".yaml")) {
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}

// readPolicyFile reads at most MaxPolicyBytes+1 bytes, so ParsePolicy
// refuses a huge file without it being read whole.
func readPolicyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file: %w", fs.ErrInvalid)
	}
	return io.ReadAll(io.LimitReader(f, MaxPolicyBytes+1))
}

func unjoinErrs(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
