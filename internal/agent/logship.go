package agent

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

// Log shipping: the agent tails files (globs, following rotation) and
// journald and sends the lines in batches of their own, outside the metric
// buffer. The files and the journal are the buffer: while the server is
// unreachable nothing is read ahead. Exactly-once delivery across agent
// restarts comes from a one-slot write-ahead record:
//
//  1. read new lines from the committed positions into a batch with a
//     fresh batch id and sequence number, and write it with the positions
//     it reaches to <state>/logs/pending.json (atomically);
//  2. send it until the server acknowledges it (applied or duplicate);
//  3. only then write those positions to <state>/logs/offsets.json and
//     remove pending.json.
//
// A restart between 1 and 3 sends pending.json again with the same batch
// id, which the server answers as a duplicate, so a line is never lost and
// never stored twice.

// Log shipping defaults.
const (
	DefaultLogPoll     = time.Second
	logBatchRecords    = 1000
	logBatchBytes      = 1 << 20
	logHeadSize        = 1024
	logStateFile       = "offsets.json"
	logPendingFile     = "pending.json"
	maxLogSendBackoff  = 30 * time.Second
	journalChannelSize = 1024
)

// fileOffset is what is remembered about one tailed file.
type fileOffset struct {
	Path   string `json:"path"`
	Dev    uint64 `json:"dev"`
	Inode  uint64 `json:"inode"`
	Offset int64  `json:"offset"`
	// HeadLen and HeadHash are the length and SHA-256 of the file's first
	// bytes: an inode number is reused after deletion, and a truncated
	// file keeps its inode.
	HeadLen  int    `json:"head_len"`
	HeadHash string `json:"head_hash"`
}

func (s fileOffset) key() string {
	if s.Inode == 0 {
		return "path:" + s.Path
	}
	return strconv.FormatUint(s.Dev, 10) + ":" + strconv.FormatUint(s.Inode, 10)
}

// logState is the committed (or, in a pending record, the to-be-committed)
// read position of every source.
type logState struct {
	Files []fileOffset `json:"files"`
	// Cursor is the journal cursor of the last entry shipped.
	Cursor string `json:"cursor,omitempty"`
}

// logPending is a batch sent but not yet acknowledged, with the state to
// commit once it is.
type logPending struct {
	Batch agentproto.Batch `json:"batch"`
	State logState         `json:"state"`
}

type shipFile struct {
	st fileOffset
	f  *os.File
}

// logShipper runs in its own goroutine. Its fields are owned by it.
type logShipper struct {
	dir       string
	globs     []string
	fromStart bool
	poll      time.Duration
	log       *slog.Logger
	now       func() time.Time
	agentID   string
	// nextSeq allocates the batch sequence number shared with the
	// agent's other batches; send posts a batch.
	nextSeq func() (uint64, error)
	send    func(ctx context.Context, b agentproto.Batch) error

	journalBin string // "" disables journald
	journal    *journalReader

	files   map[string]*shipFile
	saved   map[string]fileOffset
	first   bool // no committed state yet: files found by the first scan start at their end
	cursor  string
	pending *logPending
}

// logShipperOptions configures newLogShipper.
type logShipperOptions struct {
	// Dir holds offsets.json and pending.json.
	Dir string
	// Files are glob patterns of files to tail.
	Files []string
	// JournalBin is the journalctl program; "" does not read journald.
	JournalBin string
	// FromStart reads files found at the very first start from their
	// beginning; by default only lines written after it are shipped (as
	// for journald).
	FromStart bool
	// Poll is how often files are checked for new lines; default 1s.
	Poll    time.Duration
	AgentID string
	NextSeq func() (uint64, error)
	Send    func(ctx context.Context, b agentproto.Batch) error
	Logger  *slog.Logger
	Now     func() time.Time
}

// newLogShipper validates o and loads the committed state and any pending
// batch; Run does the work.
func newLogShipper(o logShipperOptions) (*logShipper, error) {
	for _, g := range o.Files {
		if _, err := filepath.Match(g, ""); err != nil {
			return nil, fmt.Errorf("logs: bad glob %q: %w", g, err)
		}
	}
	if o.Poll <= 0 {
		o.Poll = DefaultLogPoll
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("logs: state dir: %w", err)
	}
	s := &logShipper{dir: o.Dir, globs: o.Files, fromStart: o.FromStart, poll: o.Poll, log: o.Logger.With("component", "logship"),
		now: o.Now, agentID: o.AgentID, nextSeq: o.NextSeq, send: o.Send, journalBin: o.JournalBin}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// load reads the committed state and the pending batch; the pending
// batch's state is where reading resumes.
func (s *logShipper) load() error {
	s.files, s.saved, s.pending, s.cursor = map[string]*shipFile{}, map[string]fileOffset{}, nil, ""
	var st logState
	raw, err := os.ReadFile(filepath.Join(s.dir, logStateFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		s.first = true
	case err != nil:
		return fmt.Errorf("logs: read offsets: %w", err)
	default:
		if err := json.Unmarshal(raw, &st); err != nil {
			return fmt.Errorf("logs: read offsets %s: %w", filepath.Join(s.dir, logStateFile), err)
		}
	}
	raw, err = os.ReadFile(filepath.Join(s.dir, logPendingFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("logs: read pending batch: %w", err)
	default:
		var p logPending
		if err := json.Unmarshal(raw, &p); err != nil {
			// Written atomically, so this is outside damage; the lines
			// are re-read from the committed state.
			s.log.Error("unreadable pending log batch; re-reading from the committed offsets", "err", err)
		} else {
			s.pending = &p
			st = p.State
			s.first = false
		}
	}
	for _, f := range st.Files {
		s.saved[f.key()] = f
	}
	s.cursor = st.Cursor
	return nil
}

// Run ships until ctx ends or the server refuses the agent.
func (s *logShipper) Run(ctx context.Context) error {
	defer s.closeAll()
	s.startJournal(ctx)
	backoff := s.poll
	for {
		more, err := s.step(ctx)
		if errors.Is(err, ErrRefused) {
			return err
		}
		wait := s.poll
		switch {
		case err != nil:
			if ctx.Err() == nil {
				s.log.Warn("log shipping: will retry", "err", err, "in", backoff)
			}
			wait = backoff
			backoff = min(2*backoff, maxLogSendBackoff)
		case more:
			wait = 0
			backoff = s.poll
		default:
			backoff = s.poll
		}
		if wait == 0 {
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func (s *logShipper) closeAll() {
	for _, f := range s.files {
		_ = f.f.Close()
	}
	s.files = map[string]*shipFile{}
	if s.journal != nil {
		s.journal.stop()
		s.journal = nil
	}
}

func (s *logShipper) startJournal(ctx context.Context) {
	if s.journalBin == "" {
		return
	}
	s.journal = startJournal(ctx, s.journalBin, s.cursor, s.log)
}

// reset forgets everything read but not committed and starts again from
// the files on disk (after a failure to record a pending batch).
func (s *logShipper) reset(ctx context.Context) {
	s.closeAll()
	if err := s.load(); err != nil {
		s.log.Error("log shipping: reload state", "err", err)
	}
	s.startJournal(ctx)
}

// step sends the pending batch, or reads the next one and sends it. more
// reports that further lines are waiting.
func (s *logShipper) step(ctx context.Context) (more bool, err error) {
	// After an older pending batch, new lines may be waiting.
	more = s.pending != nil
	if s.pending == nil {
		recs, st, full, changed := s.collect()
		if len(recs) == 0 {
			if changed {
				// New files, rotation bookkeeping or blank lines:
				// nothing to send, but the positions count.
				if err := s.saveState(st); err != nil {
					return false, err
				}
			}
			s.first = false
			return false, nil
		}
		s.first = false
		seq, err := s.nextSeq()
		if err != nil {
			s.reset(ctx)
			return false, fmt.Errorf("allocate batch sequence: %w", err)
		}
		p := &logPending{Batch: agentproto.Batch{BatchID: newUUID(), AgentID: s.agentID, Seq: seq, SentAt: s.now().UTC(), Logs: recs}, State: st}
		raw, err := json.Marshal(p)
		if err == nil {
			err = writeFileAtomic(filepath.Join(s.dir, logPendingFile), raw, 0o600)
		}
		if err != nil {
			s.reset(ctx)
			return false, fmt.Errorf("record pending log batch: %w", err)
		}
		s.pending = p
		more = full
	}
	err = s.send(ctx, s.pending.Batch)
	var he *httpError
	switch {
	case err == nil:
	case errors.Is(err, ErrRefused):
		return false, err
	case errors.As(err, &he) && he.status >= 400 && he.status < 500 && he.status != http.StatusTooManyRequests:
		// The server will never take this batch; skipping it keeps the
		// rest flowing. Its lines are not sent again.
		s.log.Error("server rejected log batch; skipping its lines", "seq", s.pending.Batch.Seq, "records", len(s.pending.Batch.Logs), "err", err)
	default:
		return false, err
	}
	if err := s.saveState(s.pending.State); err != nil {
		return false, err
	}
	if err := os.Remove(filepath.Join(s.dir, logPendingFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("remove pending log batch: %w", err)
	}
	s.pending = nil
	return more, nil
}

func (s *logShipper) saveState(st logState) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(s.dir, logStateFile), raw, 0o600); err != nil {
		return fmt.Errorf("save log offsets: %w", err)
	}
	return nil
}

// collect reads up to one batch of new lines and returns them with the
// state after them. full reports that a limit stopped the reading;
// changed that some position moved.
func (s *logShipper) collect() (recs []agentproto.LogRecord, st logState, full, changed bool) {
	now := s.now().UTC()
	budget := logBatchBytes
	seen := s.discover()
	keys := make([]string, 0, len(s.files))
	for k := range s.files {
		keys = append(keys, k)
	}
	// Files rotated away first: their lines are older than those of the
	// file now under their name.
	sort.Slice(keys, func(i, j int) bool {
		if seen[keys[i]] != seen[keys[j]] {
			return !seen[keys[i]]
		}
		return s.files[keys[i]].st.Path < s.files[keys[j]].st.Path
	})
	for _, k := range keys {
		tf := s.files[k]
		gone := !seen[k]
		var moved, done bool
		recs, budget, moved, done = s.readFile(tf, recs, budget, gone, now)
		changed = changed || moved
		if !done {
			full = true
			break
		}
		if gone {
			// Rotated away (or deleted) and read to its end.
			_ = tf.f.Close()
			delete(s.files, k)
			changed = true
		}
	}
	if s.journal != nil && !full {
		for len(recs) < logBatchRecords && budget > 0 {
			je, ok := s.journal.next()
			if !ok {
				break
			}
			recs = append(recs, je.rec)
			budget -= len(je.rec.Line)
			s.cursor = je.cursor
			changed = true
		}
		full = full || len(recs) >= logBatchRecords || budget <= 0
	}
	st.Cursor = s.cursor
	for _, tf := range s.files {
		st.Files = append(st.Files, tf.st)
	}
	sort.Slice(st.Files, func(i, j int) bool { return st.Files[i].Path < st.Files[j].Path })
	return recs, st, full, changed
}

// discover opens the files the globs match now and returns the keys seen.
func (s *logShipper) discover() map[string]bool {
	seen := map[string]bool{}
	var paths []string
	for _, g := range s.globs {
		ms, _ := filepath.Glob(g) // validated in newLogShipper
		paths = append(paths, ms...)
	}
	sort.Strings(paths)
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		dev, ino := fileIdentity(fi)
		k := fileOffset{Path: p, Dev: dev, Inode: ino}.key()
		if seen[k] {
			continue // the same file through two globs or a hard link
		}
		seen[k] = true
		if tf, ok := s.files[k]; ok {
			tf.st.Path = p // renamed within the globs: keep reading
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			s.log.Warn("cannot open log file", "path", p, "err", err)
			continue
		}
		tf := &shipFile{f: f, st: fileOffset{Path: p, Dev: dev, Inode: ino}}
		if sv, ok := s.saved[k]; ok && sameHead(f, sv) {
			tf.st.Offset, tf.st.HeadLen, tf.st.HeadHash = sv.Offset, sv.HeadLen, sv.HeadHash
		} else if s.first && !s.fromStart {
			// First start: ship what is written from now on.
			tf.st.Offset = fi.Size()
		}
		delete(s.saved, k)
		s.files[k] = tf
	}
	return seen
}

func headHash(f *os.File, n int) (string, int, error) {
	buf := make([]byte, n)
	got, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", 0, err
	}
	sum := sha256.Sum256(buf[:got])
	return hex.EncodeToString(sum[:]), got, nil
}

// sameHead reports whether f still starts with the bytes recorded in st:
// the same file, not truncated and rewritten.
func sameHead(f *os.File, st fileOffset) bool {
	if st.HeadLen == 0 {
		return true
	}
	h, n, err := headHash(f, st.HeadLen)
	return err == nil && n == st.HeadLen && h == st.HeadHash
}

// readFile appends tf's new complete lines to recs within budget bytes.
// done is false when a limit stopped it before the end. final means the
// file is no longer under its name: a last line without LF is then taken
// as it is.
func (s *logShipper) readFile(tf *shipFile, recs []agentproto.LogRecord, budget int, final bool, now time.Time) (_ []agentproto.LogRecord, _ int, moved, done bool) {
	fi, err := tf.f.Stat()
	if err != nil {
		return recs, budget, false, true
	}
	size := fi.Size()
	if size < tf.st.Offset || !sameHead(tf.f, tf.st) {
		// copytruncate, or rewritten in place: start again at 0.
		s.log.Info("log file truncated; reading from the start", "path", tf.st.Path)
		tf.st.Offset, tf.st.HeadLen, tf.st.HeadHash = 0, 0, ""
		moved = true
	}
	if tf.st.HeadLen < logHeadSize && size > int64(tf.st.HeadLen) {
		if h, n, err := headHash(tf.f, logHeadSize); err == nil {
			tf.st.HeadHash, tf.st.HeadLen = h, n
			moved = true
		}
	}
	if size == tf.st.Offset {
		return recs, budget, moved, true
	}
	br := bufio.NewReaderSize(io.NewSectionReader(tf.f, tf.st.Offset, size-tf.st.Offset), agentproto.MaxLogLine+1)
	pos := tf.st.Offset
	var long []byte
	longLen := 0
	for {
		if len(recs) >= logBatchRecords || budget <= 0 {
			return recs, budget, moved, false
		}
		sl, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if long == nil {
				long = append([]byte(nil), sl[:agentproto.MaxLogLine]...)
			}
			longLen += len(sl)
			pos += int64(len(sl))
			continue
		}
		complete := err == nil
		if !complete && !(final && len(sl)+longLen > 0) {
			// Wait for the rest of the line; a long line's first part is
			// read again then.
			return recs, budget, moved, true
		}
		pos += int64(len(sl))
		line := trimEOL(sl)
		rec := agentproto.LogRecord{Time: now, Source: agentproto.LogSourceFile, Path: tf.st.Path}
		if long != nil {
			rec.Truncated = longLen + len(line)
			line = long
			long, longLen = nil, 0
		} else if len(line) > agentproto.MaxLogLine {
			rec.Truncated = len(line)
			line = line[:agentproto.MaxLogLine]
		}
		tf.st.Offset = pos
		moved = true
		if len(trimSpace(line)) > 0 {
			rec.Line = string(line)
			recs = append(recs, rec)
			budget -= len(line)
		}
		if !complete {
			return recs, budget, moved, true
		}
	}
}

func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// allocSeq hands out the next batch sequence number and persists it
// before it is used, so that a restart never reuses one.
func (a *Agent) allocSeq() (uint64, error) {
	a.seqMu.Lock()
	defer a.seqMu.Unlock()
	next := a.seq + 1
	if err := writeFileAtomic(a.statePath("seq"), []byte(strconv.FormatUint(next, 10)), 0o600); err != nil {
		return 0, err
	}
	a.seq = next
	return next, nil
}

// startLogs starts the log shipper when files or journald are configured;
// stop ends it and waits for it.
func (a *Agent) startLogs(ctx context.Context) (stop func(), err error) {
	journalBin := ""
	if a.o.Journal {
		journalBin = a.o.JournalBin
		if journalBin == "" {
			journalBin = "journalctl"
		}
		if p, err := exec.LookPath(journalBin); err != nil {
			a.log.Warn("journald shipping disabled: journalctl not found", "bin", journalBin, "err", err)
			journalBin = ""
		} else {
			journalBin = p
		}
	}
	if len(a.o.LogFiles) == 0 && journalBin == "" {
		return func() {}, nil
	}
	ls, err := newLogShipper(logShipperOptions{
		Dir: a.statePath("logs"), Files: a.o.LogFiles, JournalBin: journalBin, FromStart: a.o.LogsFromStart, Poll: a.o.LogPoll,
		AgentID: a.cred.AgentID, NextSeq: a.allocSeq, Logger: a.o.Logger, Now: a.o.Now,
		Send: func(ctx context.Context, b agentproto.Batch) error {
			var resp agentproto.BatchResponse
			return a.post(ctx, agentproto.PathBatches, a.cred.Credential, b, &resp)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := ls.Run(ctx); err != nil {
			a.log.Error("log shipping stopped", "err", err)
		}
	}()
	a.log.Info("log shipping", "files", a.o.LogFiles, "journald", journalBin != "")
	return func() { cancel(); <-done }, nil
}
