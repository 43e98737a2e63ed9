package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

// fakeLogServer applies each batch id once, like the real server, and can
// be made unreachable.
type fakeLogServer struct {
	mu    sync.Mutex
	seen  map[string]bool
	lines []string
	down  bool
	sends int
}

func (f *fakeLogServer) send(ctx context.Context, b agentproto.Batch) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sends++
	if f.down {
		return errors.New("connection refused")
	}
	if f.seen[b.BatchID] {
		return nil // duplicate: acknowledged, not applied
	}
	f.seen[b.BatchID] = true
	for _, r := range b.Logs {
		f.lines = append(f.lines, r.Line)
	}
	return nil
}

func (f *fakeLogServer) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lines...)
}

func newTestShipper(t *testing.T, state string, globs []string, fromStart bool, srv *fakeLogServer) *logShipper {
	t.Helper()
	var seq uint64
	s, err := newLogShipper(logShipperOptions{Dir: state, Files: globs, FromStart: fromStart, AgentID: "a",
		NextSeq: func() (uint64, error) { seq++; return seq, nil }, Send: srv.send})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.closeAll)
	return s
}

// shipAll steps until nothing more is read.
func shipAll(t *testing.T, s *logShipper) error {
	t.Helper()
	for range 100 {
		more, err := s.step(context.Background())
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
	t.Fatal("shipper never drained")
	return nil
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func mkLines(from, to int) (string, []string) {
	var b strings.Builder
	var want []string
	for i := from; i < to; i++ {
		l := fmt.Sprintf("line %d", i)
		b.WriteString(l + "\n")
		want = append(want, l)
	}
	return b.String(), want
}

func sameLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	for i := range max(len(got), len(want)) {
		if i >= len(got) || i >= len(want) || got[i] != want[i] {
			t.Fatalf("%s: got %d lines, want %d; first difference at %d", what, len(got), len(want), i)
		}
	}
}

func TestLogShipRotationAndPartialLines(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	log := filepath.Join(dir, "app.log")
	chunk, want := mkLines(0, 3)
	appendFile(t, log, chunk+"partial")
	srv := &fakeLogServer{seen: map[string]bool{}}
	s := newTestShipper(t, state, []string{log}, true, srv)
	if err := shipAll(t, s); err != nil {
		t.Fatal(err)
	}
	sameLines(t, "first read", srv.got(), want)
	appendFile(t, log, " done\n")
	want = append(want, "partial done")
	if err := shipAll(t, s); err != nil {
		t.Fatal(err)
	}
	sameLines(t, "completed partial line", srv.got(), want)

	// Rotation by rename: lines written to the old file after the last
	// read are still shipped, then the new file from its start.
	chunk, w := mkLines(3, 5)
	appendFile(t, log, chunk)
	want = append(want, w...)
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	chunk, w = mkLines(5, 7)
	appendFile(t, log, chunk)
	want = append(want, w...)
	if err := shipAll(t, s); err != nil {
		t.Fatal(err)
	}
	sameLines(t, "after rotation", srv.got(), want)

	// copytruncate: the file starts again.
	if err := os.Truncate(log, 0); err != nil {
		t.Fatal(err)
	}
	chunk, w = mkLines(7, 8)
	appendFile(t, log, chunk)
	want = append(want, w...)
	if err := shipAll(t, s); err != nil {
		t.Fatal(err)
	}
	sameLines(t, "after truncation", srv.got(), want)

	// A line longer than the limit is cut and marked.
	appendFile(t, log, strings.Repeat("x", agentproto.MaxLogLine+100)+"\n")
	var lastLen, trunc int
	send := s.send
	s.send = func(ctx context.Context, b agentproto.Batch) error {
		for _, r := range b.Logs {
			lastLen, trunc = len(r.Line), r.Truncated
		}
		return send(ctx, b)
	}
	if err := shipAll(t, s); err != nil {
		t.Fatal(err)
	}
	if lastLen != agentproto.MaxLogLine || trunc != agentproto.MaxLogLine+100 {
		t.Errorf("long line shipped as %d bytes, truncated=%d", lastLen, trunc)
	}
}

func TestLogShipExactlyOnceAcrossRestarts(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	log := filepath.Join(dir, "auth.log")
	chunk, want := mkLines(0, 2500) // three batches' worth
	appendFile(t, log, chunk)
	srv := &fakeLogServer{seen: map[string]bool{}}

	// The first batch is acknowledged, the second is recorded as
	// pending but the server goes away, and the agent "crashes".
	s := newTestShipper(t, state, []string{log}, true, srv)
	if _, err := s.step(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	srv.down = true
	srv.mu.Unlock()
	if _, err := s.step(context.Background()); err == nil {
		t.Fatal("send to a down server succeeded")
	}
	s.closeAll()
	if _, err := os.Stat(filepath.Join(state, logPendingFile)); err != nil {
		t.Fatalf("no pending batch on disk: %v", err)
	}

	// Restarted: the pending batch goes again with its id.
	srv.mu.Lock()
	srv.down = false
	srv.mu.Unlock()
	s = newTestShipper(t, state, []string{log}, true, srv)
	if s.pending == nil {
		t.Fatal("pending batch not loaded")
	}
	if err := shipAll(t, s); err != nil {
		t.Fatal(err)
	}
	sameLines(t, "after restart", srv.got(), want)

	// The server applied the pending batch, but the acknowledgement was
	// lost (crash before the commit): the resend is a duplicate.
	chunk, w := mkLines(2500, 2600)
	appendFile(t, log, chunk)
	want = append(want, w...)
	s2 := newTestShipper(t, state, []string{log}, true, srv)
	recs, st, _, _ := s2.collect()
	p := &logPending{Batch: agentproto.Batch{BatchID: newUUID(), AgentID: "a", Seq: 99, Logs: recs}, State: st}
	if err := srv.send(context.Background(), p.Batch); err != nil { // applied by the server...
		t.Fatal(err)
	}
	s2.pending = p // ...but the agent did not hear back
	raw := mustJSON(t, p)
	if err := writeFileAtomic(filepath.Join(state, logPendingFile), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	s2.closeAll()
	s3 := newTestShipper(t, state, []string{log}, true, srv)
	if err := shipAll(t, s3); err != nil {
		t.Fatal(err)
	}
	sameLines(t, "after a lost acknowledgement", srv.got(), want)
	if _, err := os.Stat(filepath.Join(state, logPendingFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pending batch left after its acknowledgement: %v", err)
	}
}

func TestLogShipFirstStartTails(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	log := filepath.Join(dir, "syslog")
	chunk, _ := mkLines(0, 10)
	appendFile(t, log, chunk)
	srv := &fakeLogServer{seen: map[string]bool{}}
	s := newTestShipper(t, state, []string{filepath.Join(dir, "*")}, false, srv)
	if err := shipAll(t, s); err != nil {
		t.Fatal(err)
	}
	if got := srv.got(); len(got) != 0 {
		t.Fatalf("first start shipped old lines: %v", got)
	}
	chunk, want := mkLines(10, 12)
	appendFile(t, log, chunk)
	// A file appearing later is read from its start.
	other := filepath.Join(dir, "other.log")
	chunk2, want2 := mkLines(100, 101)
	appendFile(t, other, chunk2)
	if err := shipAll(t, s); err != nil {
		t.Fatal(err)
	}
	sameLines(t, "new lines only", srv.got(), append(want2, want...))
}

func TestParseJournalEntry(t *testing.T) {
	e, err := parseJournalEntry([]byte(`{"__CURSOR":"s=abc;i=1","__REALTIME_TIMESTAMP":"1764230400123456","_SYSTEMD_UNIT":"ssh.service",` +
		`"SYSLOG_IDENTIFIER":"sshd","_PID":"812","PRIORITY":"6","MESSAGE":"Accepted publickey for alice from 198.51.100.4 port 40022 ssh2"}`))
	if err != nil {
		t.Fatal(err)
	}
	r := e.rec
	if e.cursor != "s=abc;i=1" || r.Unit != "ssh.service" || r.Identifier != "sshd" || r.PID != 812 || r.Priority == nil || *r.Priority != 6 ||
		r.Time.UnixMicro() != 1764230400123456 || !strings.HasPrefix(r.Line, "Accepted") || r.Source != agentproto.LogSourceJournal {
		t.Errorf("entry = %+v cursor %q", r, e.cursor)
	}
	// Binary messages come as byte arrays.
	e, err = parseJournalEntry([]byte(`{"__CURSOR":"c2","MESSAGE":[104,105],"_COMM":"kernel"}`))
	if err != nil || e.rec.Line != "hi" || e.rec.Identifier != "kernel" {
		t.Errorf("binary message: %+v %v", e.rec, err)
	}
	if _, err := parseJournalEntry([]byte(`{"MESSAGE":"x"}`)); err == nil {
		t.Error("entry without cursor accepted")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestLogShipJournal runs the shipper against a fake journalctl (a real
// executable written by the test) that honours --after-cursor: entries go
// once, and a restart resumes after the committed cursor.
func TestLogShipJournal(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	bin := filepath.Join(dir, "journalctl")
	script := `#!/bin/sh
after=""
for a in "$@"; do case "$a" in --after-cursor=*) after="${a#--after-cursor=}";; esac; done
echo "$@" >> "$0.args"
emit() { printf '{"__CURSOR":"%s","__REALTIME_TIMESTAMP":"1764230400000000","SYSLOG_IDENTIFIER":"sshd","_PID":"7","PRIORITY":"5","_SYSTEMD_UNIT":"ssh.service","MESSAGE":"entry %s"}\n' "$1" "$1"; }
case "$after" in
"") emit c1; emit c2; emit c3 ;;
c1) emit c2; emit c3 ;;
c2) emit c3 ;;
esac
exec sleep 30
`
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	srv := &fakeLogServer{seen: map[string]bool{}}
	runs := 0
	run := func() {
		runs++
		var seq uint64
		s, err := newLogShipper(logShipperOptions{Dir: state, JournalBin: bin, AgentID: "a",
			NextSeq: func() (uint64, error) { seq++; return seq, nil }, Send: srv.send})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		s.startJournal(ctx)
		started := func() bool { raw, _ := os.ReadFile(bin + ".args"); return strings.Count(string(raw), "\n") >= runs }
		for i := 0; i < 2000 && (len(srv.got()) < 3 || !started()); i++ {
			if _, err := s.step(ctx); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond) // polling the fake's output, not a timing assertion
		}
		cancel()
		s.closeAll()
	}
	run()
	sameLines(t, "journal entries", srv.got(), []string{"entry c1", "entry c2", "entry c3"})
	run() // restarted: resumes after c3, nothing new
	sameLines(t, "after restart", srv.got(), []string{"entry c1", "entry c2", "entry c3"})
	args, err := os.ReadFile(bin + ".args")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(args), "--output=json --follow --no-pager --lines=0") || !strings.Contains(string(args), "--after-cursor=c3") {
		t.Errorf("journalctl arguments:\n%s", args)
	}
}
