package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

// commandTimeout bounds one allow-listed command.
const commandTimeout = 60 * time.Second

// slowCommands are allow-listed commands that walk the file system: they
// run at most once per slowEvery, and their last result is reused.
var slowCommands = map[string]bool{"world-writable-files": true, "unowned-files": true}

const slowEvery = 24 * time.Hour

// factsState is the background collection: at most one runs at a time,
// and its result waits in ready for the next batch.
type factsState struct {
	mu      sync.Mutex
	running bool
	ready   *agentproto.Facts
	slow    map[string]slowResult
}

type slowResult struct {
	at time.Time
	cf agentproto.CommandFact
}

// startFacts starts collecting compliance facts unless a collection is
// still running. It asks the server which facts its policies need; when
// the server has no spec (an older server) or cannot be reached, no facts
// are reported this round.
func (a *Agent) startFacts(ctx context.Context, now time.Time) {
	st := &a.facts
	st.mu.Lock()
	if st.running {
		st.mu.Unlock()
		return
	}
	st.running = true
	st.mu.Unlock()
	go func() {
		f := a.collectFacts(ctx, now)
		st.mu.Lock()
		defer st.mu.Unlock()
		st.running = false
		if f != nil {
			st.ready = f
		}
	}()
}

// takeFacts returns facts collected since the last call, or nil.
func (a *Agent) takeFacts() *agentproto.Facts {
	a.facts.mu.Lock()
	defer a.facts.mu.Unlock()
	f := a.facts.ready
	a.facts.ready = nil
	return f
}

func (a *Agent) collectFacts(ctx context.Context, now time.Time) *agentproto.Facts {
	spec, err := a.factSpec(ctx)
	if err != nil {
		a.log.Debug("no compliance fact spec", "err", err)
		return nil
	}
	// Reuse recent results of the slow commands.
	var cached []agentproto.CommandFact
	var fresh []string
	a.facts.mu.Lock()
	for _, name := range spec.Commands {
		if r, ok := a.facts.slow[name]; ok && slowCommands[name] && now.Sub(r.at) < slowEvery {
			cached = append(cached, r.cf)
		} else {
			fresh = append(fresh, name)
		}
	}
	a.facts.mu.Unlock()
	spec.Commands = fresh
	f := a.col.Facts(ctx, spec, now)
	if ctx.Err() != nil {
		return nil
	}
	a.facts.mu.Lock()
	if a.facts.slow == nil {
		a.facts.slow = map[string]slowResult{}
	}
	for _, cf := range f.Commands {
		if slowCommands[cf.Name] && cf.Error == "" {
			a.facts.slow[cf.Name] = slowResult{at: now, cf: cf}
		}
	}
	a.facts.mu.Unlock()
	f.Commands = append(f.Commands, cached...)
	return &f
}

// factSpec fetches the server's FactSpec.
func (a *Agent) factSpec(ctx context.Context) (agentproto.FactSpec, error) {
	var spec agentproto.FactSpec
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.o.Server+agentproto.PathFactSpec, nil)
	if err != nil {
		return spec, err
	}
	req.Header.Set("User-Agent", "nocsoc-agent/"+Version)
	req.Header.Set("Authorization", "Bearer "+a.cred.Credential)
	resp, err := a.client.Do(req)
	if err != nil {
		return spec, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return spec, err
	}
	if resp.StatusCode != http.StatusOK {
		return spec, &httpError{status: resp.StatusCode, msg: strings.TrimSpace(string(raw))}
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		return spec, fmt.Errorf("decode fact spec: %w", err)
	}
	return spec, nil
}

// Facts collects what spec asks for, within the protocol's bounds. Only
// allow-listed commands run; file content is read only where
// agentproto.ContentAllowed permits. Root prefixes every file read.
func (c *Collector) Facts(ctx context.Context, spec agentproto.FactSpec, now time.Time) agentproto.Facts {
	f := agentproto.Facts{CollectedAt: now}
	users, groups := c.idNames()
	content := map[string]bool{}
	for _, p := range spec.Contents {
		content[p] = true
	}
	paths := slices.Clone(spec.Files)
	for _, p := range spec.Contents {
		if !slices.Contains(paths, p) {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	if len(paths) > agentproto.MaxFactFiles {
		paths = paths[:agentproto.MaxFactFiles]
	}
	for _, p := range paths {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p {
			continue
		}
		f.Files = append(f.Files, c.fileFact(p, content[p] && agentproto.ContentAllowed(p), users, groups))
	}
	keys := spec.Sysctls
	if len(keys) > agentproto.MaxFactSysctls {
		keys = keys[:agentproto.MaxFactSysctls]
	}
	for _, k := range keys {
		if !agentproto.SysctlKeyValid(k) {
			continue
		}
		s := agentproto.SysctlFact{Key: k}
		if b, err := os.ReadFile(c.path(filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/")))); err == nil {
			s.Found, s.Value = true, strings.TrimSpace(string(b))
		}
		f.Sysctls = append(f.Sysctls, s)
	}
	for _, name := range spec.Commands {
		argv, ok := agentproto.AllowedCommand(name)
		if !ok {
			continue
		}
		f.Commands = append(f.Commands, runAllowed(ctx, name, argv))
	}
	if c.Root == "" {
		f.ServicesEnabled, f.ServicesKnown = enabledServices(ctx)
	}
	return f
}

// idNames maps uids and gids to names from the (rooted) passwd and group
// files.
func (c *Collector) idNames() (map[int]string, map[int]string) {
	users, groups := map[int]string{}, map[int]string{}
	if fh, err := os.Open(c.path("/etc/passwd")); err == nil {
		us, _ := ParsePasswd(fh)
		fh.Close()
		for _, u := range us {
			if _, dup := users[u.UID]; !dup {
				users[u.UID] = u.Name
			}
		}
	}
	if fh, err := os.Open(c.path("/etc/group")); err == nil {
		gs, _ := ParseGroup(fh)
		fh.Close()
		for _, g := range gs {
			if _, dup := groups[g.GID]; !dup {
				groups[g.GID] = g.Name
			}
		}
	}
	return users, groups
}

func (c *Collector) fileFact(p string, withContent bool, users, groups map[int]string) agentproto.FileFact {
	ff := agentproto.FileFact{Path: p}
	fi, err := os.Stat(c.path(p))
	if errors.Is(err, fs.ErrNotExist) {
		return ff
	}
	if err != nil {
		ff.Exists, ff.Error = true, cleanErr(err, c.path(p))
		return ff
	}
	ff.Exists, ff.IsDir, ff.Size = true, fi.IsDir(), fi.Size()
	m := uint32(fi.Mode().Perm())
	if fi.Mode()&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if fi.Mode()&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if fi.Mode()&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	ff.Mode = m
	if uid, gid, ok := factsOwner(fi); ok {
		ff.UID, ff.GID = uid, gid
		ff.Owner, ff.Group = users[uid], groups[gid]
	}
	if withContent && !fi.IsDir() {
		fh, err := os.Open(c.path(p))
		if err != nil {
			ff.Error = cleanErr(err, c.path(p))
			return ff
		}
		defer fh.Close()
		b, err := io.ReadAll(io.LimitReader(fh, agentproto.MaxFileContent+1))
		if err != nil {
			ff.Error = cleanErr(err, c.path(p))
			return ff
		}
		if len(b) > agentproto.MaxFileContent {
			b, ff.Truncated = b[:agentproto.MaxFileContent], true
		}
		ff.Content, ff.HasContent = strings.ToValidUTF8(string(b), "\uFFFD"), true
	}
	return ff
}

// cleanErr drops the (rooted) path from an error: the fact names it.
func cleanErr(err error, p string) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return strings.ReplaceAll(err.Error(), p, "")
}

// runAllowed runs one allow-listed command with a timeout and bounded
// output. A missing program is Missing; a non-zero exit with no output is
// an Error (the command could not do its job, e.g. not run as root).
func runAllowed(ctx context.Context, name string, argv []string) agentproto.CommandFact {
	cf := agentproto.CommandFact{Name: name}
	bin, err := exec.LookPath(argv[0])
	if err != nil {
		// sbin is often missing from a service's PATH.
		for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
			if fi, serr := os.Stat(filepath.Join(dir, argv[0])); serr == nil && fi.Mode()&0o111 != 0 {
				bin, err = filepath.Join(dir, argv[0]), nil
				break
			}
		}
		if err != nil {
			cf.Missing = true
			return cf
		}
	}
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, argv[1:]...)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	killWithParent(cmd) // a find over / must not outlive a killed agent
	var out, errOut limitedBuffer
	out.max, errOut.max = agentproto.MaxCommandOutput, 4096
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	cf.Output, cf.Truncated = strings.ToValidUTF8(out.b.String(), "\uFFFD"), out.cut
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		cf.ExitCode = ee.ExitCode()
		if ctx.Err() != nil {
			cf.Error = "timed out after " + commandTimeout.String()
		} else if strings.TrimSpace(cf.Output) == "" {
			first, _, _ := strings.Cut(strings.TrimSpace(errOut.b.String()), "\n")
			cf.Error = fmt.Sprintf("exit status %d: %s", cf.ExitCode, first)
		}
	case err != nil:
		cf.Error = err.Error()
	}
	return cf
}

// limitedBuffer keeps the first max bytes written and drops the rest
// (without failing the writer, so the command is not killed by SIGPIPE).
type limitedBuffer struct {
	b   bytes.Buffer
	max int
	cut bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		if len(p) > room {
			l.b.Write(p[:room])
			l.cut = true
		} else {
			l.b.Write(p)
		}
	} else if len(p) > 0 {
		l.cut = true
	}
	return len(p), nil
}

// enabledServices lists services enabled at boot; ok false without
// systemd.
func enabledServices(ctx context.Context) ([]string, bool) {
	bin, err := exec.LookPath("systemctl")
	if err != nil {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "list-unit-files", "--type=service", "--state=enabled", "--no-legend", "--plain", "--no-pager").Output()
	if err != nil {
		return nil, false
	}
	var svcs []string
	for l := range bytes.Lines(out) {
		if f := strings.Fields(string(l)); len(f) > 0 && strings.HasSuffix(f[0], ".service") && len(svcs) < agentproto.MaxServices {
			svcs = append(svcs, f[0])
		}
	}
	slices.Sort(svcs)
	return svcs, true
}
