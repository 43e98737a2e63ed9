package fleet

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/event"
	"github.com/nocsoc/nocsoc/internal/store"
)

// File integrity monitoring: the agent reports the state of watched files
// (all of them first, then the ones that changed); the server diffs each
// report against the last known state and writes file.created,
// file.changed and file.deleted events into the SOC pipeline. An
// endpoint's first report is its baseline and raises no event.

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// validateFiles checks a batch's file states before anything of it is
// applied.
func validateFiles(files []agentproto.FileState) error {
	if len(files) > agentproto.MaxFileStates {
		return &store.FieldError{Field: "files", Reason: fmt.Sprintf("at most %d file states per batch (got %d)", agentproto.MaxFileStates, len(files))}
	}
	seen := make(map[string]bool, len(files))
	for i, f := range files {
		field := func(name string) string { return fmt.Sprintf("files[%d].%s", i, name) }
		switch {
		case !path.IsAbs(f.Path) || len(f.Path) > 4096:
			return &store.FieldError{Field: field("path"), Reason: fmt.Sprintf("%q must be an absolute path of at most 4096 bytes", f.Path)}
		case seen[f.Path]:
			return &store.FieldError{Field: field("path"), Reason: fmt.Sprintf("%q is reported twice", f.Path)}
		case f.SHA256 != "" && !sha256RE.MatchString(f.SHA256):
			return &store.FieldError{Field: field("sha256"), Reason: "must be 64 lowercase hex digits"}
		case !f.Exists && f.SHA256 != "":
			return &store.FieldError{Field: field("sha256"), Reason: "a file that does not exist has no hash"}
		case len(f.Error) > 1024:
			return &store.FieldError{Field: field("error"), Reason: "at most 1024 bytes"}
		}
		seen[f.Path] = true
	}
	return nil
}

func (s *Service) applyFiles(ctx context.Context, e store.Endpoint, b agentproto.Batch) error {
	if len(b.Files) == 0 {
		return nil
	}
	prev, err := s.o.Store.FileStates(ctx, e.ID)
	if err != nil {
		return err
	}
	now := s.o.Now().UTC()
	at := b.SentAt
	if at.IsZero() {
		at = now
	}
	// With no state stored the report is the baseline.
	if len(prev) > 0 && s.o.Events != nil {
		if evs := DiffFiles(e, prev, b.Files, at, now); len(evs) > 0 {
			// Events first: if saving the states failed, the agent's retry
			// would find the old states and write the events again rather
			// than lose them.
			if err := s.o.Events.Write(ctx, evs); err != nil {
				return fmt.Errorf("file integrity events: %w", err)
			}
			s.log.Info("file integrity changes", "endpoint", e.ID, "hostname", e.Hostname, "events", len(evs))
		}
	}
	return s.o.Store.SaveFileStates(ctx, e.ID, b.Files, now)
}

// DiffFiles turns reported file states into events against the previous
// states, ordered by path. A modification time alone is not a change
// (touch); content, size, mode and ownership are.
func DiffFiles(e store.Endpoint, prev map[string]agentproto.FileState, cur []agentproto.FileState, at, received time.Time) []event.Event {
	sorted := append([]agentproto.FileState(nil), cur...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	var out []event.Event
	for _, f := range sorted {
		old, had := prev[f.Path]
		var action, typ, verb string
		switch {
		case f.Exists && (!had || !old.Exists):
			action, typ, verb = "file.created", "creation", "created"
		case !f.Exists && had && old.Exists:
			action, typ, verb = "file.deleted", "deletion", "deleted"
		case f.Exists && had && fileChanged(old, f):
			action, typ, verb = "file.changed", "change", "changed"
		default:
			continue
		}
		if !had && !f.Exists {
			continue
		}
		msg := fmt.Sprintf("file %s %s on %s", f.Path, verb, e.Hostname)
		ev := event.Event{Time: at, Received: received, Host: e.Hostname, Input: "agent", Raw: msg}
		ev.Set("message", msg)
		ev.Set("event.kind", "event")
		ev.Set("event.category", "file")
		ev.Set("event.type", typ)
		ev.Set("event.action", action)
		ev.Set("event.module", "fim")
		ev.Set("agent.id", e.ID)
		ev.Set("file.path", f.Path)
		ev.Set("file.name", path.Base(f.Path))
		ev.Set("file.directory", path.Dir(f.Path))
		state := f
		if !f.Exists {
			state = old // a deleted file is described by what it was
		}
		setFileFields(&ev, "file.", state)
		if had && old.Exists && f.Exists {
			setFileFields(&ev, "file.previous.", old)
			var what []string
			if old.SHA256 != f.SHA256 {
				what = append(what, "content")
			}
			if old.Mode != f.Mode {
				what = append(what, "mode")
			}
			if old.UID != f.UID || old.GID != f.GID {
				what = append(what, "owner")
			}
			if old.Size != f.Size && old.SHA256 == f.SHA256 {
				what = append(what, "size")
			}
			if len(what) > 0 {
				ev.Set("file.changes", strings.Join(what, ","))
			}
		}
		if f.Error != "" {
			ev.Set("error.message", f.Error)
		}
		out = append(out, ev)
	}
	return out
}

func fileChanged(a, b agentproto.FileState) bool {
	return a.SHA256 != b.SHA256 || a.Mode != b.Mode || a.UID != b.UID || a.GID != b.GID || a.Size != b.Size || a.Error != b.Error
}

// setFileFields writes a file state's hash, size, mode and owner under
// prefix. Numbers are float64, the event model's JSON number.
func setFileFields(ev *event.Event, prefix string, f agentproto.FileState) {
	if f.SHA256 != "" {
		ev.Set(prefix+"hash.sha256", f.SHA256)
	}
	ev.Set(prefix+"size", float64(f.Size))
	ev.Set(prefix+"mode", octalMode(fs.FileMode(f.Mode)))
	ev.Set(prefix+"uid", strconv.Itoa(f.UID))
	ev.Set(prefix+"gid", strconv.Itoa(f.GID))
	if !f.MTime.IsZero() {
		ev.Set(prefix+"mtime", f.MTime.UTC().Format(time.RFC3339Nano))
	}
}

// octalMode renders permission bits the way ls and chmod do ("4755").
func octalMode(m fs.FileMode) string {
	v := uint64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return fmt.Sprintf("%04o", v)
}

// FileStates returns an endpoint's watched files as last reported, by
// path.
func (s *Service) FileStates(ctx context.Context, endpointID string) ([]agentproto.FileState, error) {
	if _, err := s.o.Store.Endpoint(ctx, endpointID); err != nil {
		return nil, err
	}
	m, err := s.o.Store.FileStates(ctx, endpointID)
	if err != nil {
		return nil, err
	}
	out := make([]agentproto.FileState, 0, len(m))
	for _, f := range m {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}
