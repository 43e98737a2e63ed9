package fleet

import (
	"context"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

func TestApplyFiles(t *testing.T) {
	e := newBkEnv(t)
	h := func(c byte) string {
		b := make([]byte, 64)
		for i := range b {
			b[i] = c
		}
		return string(b)
	}
	mt := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	send := func(files ...agentproto.FileState) []string {
		t.Helper()
		before := len(e.events.evs)
		bkSeq++
		b := agentproto.Batch{BatchID: newID(), AgentID: e.ep.ID, Seq: bkSeq, SentAt: e.clock(), Files: files}
		if _, err := e.svc.ApplyBatch(context.Background(), e.ep, b); err != nil {
			t.Fatalf("ApplyBatch: %v", err)
		}
		var out []string
		for _, ev := range e.events.evs[before:] {
			out = append(out, ev.String("event.action")+" "+ev.String("file.path"))
		}
		return out
	}
	passwd := agentproto.FileState{Path: "/etc/passwd", Exists: true, SHA256: h('a'), Size: 100, Mode: 0o644, MTime: mt}
	shadow := agentproto.FileState{Path: "/etc/shadow", Exists: true, SHA256: h('b'), Size: 50, Mode: 0o640, GID: 42, MTime: mt}
	sudoers := agentproto.FileState{Path: "/etc/sudoers"}
	if got := send(passwd, shadow, sudoers); len(got) != 0 {
		t.Fatalf("baseline raised events: %v", got)
	}
	// touch alone is no change
	touched := passwd
	touched.MTime = mt.Add(time.Hour)
	if got := send(touched); len(got) != 0 {
		t.Fatalf("mtime-only change raised %v", got)
	}
	changed := touched
	changed.SHA256, changed.Size = h('c'), 120
	shadowMode := shadow
	shadowMode.Mode = 0o666
	created := agentproto.FileState{Path: "/etc/sudoers", Exists: true, SHA256: h('d'), Size: 10, Mode: 0o440}
	cron := agentproto.FileState{Path: "/etc/cron.d/evil", Exists: true, SHA256: h('e'), Size: 10, Mode: 0o644}
	got := send(changed, shadowMode, created, cron)
	want := []string{"file.created /etc/cron.d/evil", "file.changed /etc/passwd", "file.changed /etc/shadow", "file.created /etc/sudoers"}
	if len(got) != len(want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d = %q, want %q", i, got[i], want[i])
		}
	}
	ev := e.events.evs[1]
	for k, v := range map[string]any{"event.category": "file", "file.hash.sha256": h('c'), "file.previous.hash.sha256": h('a'),
		"file.changes": "content", "file.mode": "0644", "agent.id": e.ep.ID} {
		if g, _ := ev.Get(k); g != v {
			t.Errorf("passwd event %s = %v, want %v", k, g, v)
		}
	}
	if ev.Host != "db1" {
		t.Errorf("host = %q", ev.Host)
	}
	if g := e.events.evs[2].String("file.changes"); g != "mode" {
		t.Errorf("shadow changes = %q", g)
	}
	got = send(agentproto.FileState{Path: "/etc/cron.d/evil"})
	if len(got) != 1 || got[0] != "file.deleted /etc/cron.d/evil" {
		t.Fatalf("delete: %v", got)
	}
	if last := e.events.evs[len(e.events.evs)-1]; last.String("file.hash.sha256") != h('e') {
		t.Errorf("deleted event lacks the old hash: %v", last.Fields)
	}
	files, err := e.svc.FileStates(context.Background(), e.ep.ID)
	if err != nil || len(files) != 4 {
		t.Fatalf("FileStates = %d, %v", len(files), err)
	}
}

func TestValidateFiles(t *testing.T) {
	for name, f := range map[string][]agentproto.FileState{
		"relative": {{Path: "etc/passwd"}},
		"hash":     {{Path: "/a", Exists: true, SHA256: "XYZ"}},
		"dup":      {{Path: "/a"}, {Path: "/a"}},
		"ghost":    {{Path: "/a", SHA256: "0000000000000000000000000000000000000000000000000000000000000000"}},
	} {
		if err := validateFiles(f); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
