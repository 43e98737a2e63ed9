package ingest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/event"
)

// headSize is how much of a file's start is hashed to recognise it: an
// inode number alone is reused after deletion.
const headSize = 1024

// fileState is what is remembered about one file across restarts.
type fileState struct {
	Path     string `json:"path"`
	Dev      uint64 `json:"dev"`
	Inode    uint64 `json:"inode"`
	Size     int64  `json:"size"`
	Offset   int64  `json:"offset"`
	HeadLen  int    `json:"head_len"`
	HeadHash string `json:"head_hash"`
}

func (s fileState) key() string {
	if s.Inode == 0 {
		return "path:" + s.Path
	}
	return strconv.FormatUint(s.Dev, 10) + ":" + strconv.FormatUint(s.Inode, 10)
}

// tailFile is a file being followed. Its descriptor stays open, so a file
// renamed away by rotation can still be read to its end.
type tailFile struct {
	st fileState
	f  *os.File
}

type tailer struct {
	m         *Manager
	cfg       FileInput
	c         *counters
	statePath string
	files     map[string]*tailFile
	saved     map[string]fileState // state loaded at start, by key
	p         *msgParser
}

func (m *Manager) startFiles(ctx context.Context, f FileInput) error {
	if f.MaxLine == 0 {
		f.MaxLine = DefaultMaxLine
	}
	if f.Format == "" {
		f.Format = "syslog"
	}
	if err := os.MkdirAll(m.o.StateDir, 0o750); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	t := &tailer{
		m: m, cfg: f,
		statePath: filepath.Join(m.o.StateDir, "files-"+f.Name+".json"),
		files:     map[string]*tailFile{},
		saved:     map[string]fileState{},
		p:         newMsgParser(m.o.Location),
	}
	if err := t.load(); err != nil {
		return err
	}
	t.c = m.register(f.Name, nil, nil)
	m.wg.Add(1)
	go t.run(ctx)
	return nil
}

func (t *tailer) load() error {
	b, err := os.ReadFile(t.statePath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading file offsets: %w", err)
	}
	var sts []fileState
	if err := json.Unmarshal(b, &sts); err != nil {
		return fmt.Errorf("reading file offsets %s: %w", t.statePath, err)
	}
	for _, s := range sts {
		t.saved[s.key()] = s
	}
	return nil
}

// save writes every followed file's committed offset atomically (temp file,
// fsync, rename), so a crash leaves either the old or the new state.
func (t *tailer) save() error {
	sts := make([]fileState, 0, len(t.files))
	for _, tf := range t.files {
		sts = append(sts, tf.st)
	}
	sort.Slice(sts, func(i, j int) bool { return sts[i].Path < sts[j].Path })
	b, err := json.MarshalIndent(sts, "", " ")
	if err != nil {
		return err
	}
	tmp := t.statePath + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("saving file offsets: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("saving file offsets: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("saving file offsets: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("saving file offsets: %w", err)
	}
	if err := os.Rename(tmp, t.statePath); err != nil {
		return fmt.Errorf("saving file offsets: %w", err)
	}
	return nil
}

func (t *tailer) run(ctx context.Context) {
	defer t.m.wg.Done()
	defer func() {
		for _, tf := range t.files {
			_ = tf.f.Close()
		}
	}()
	poll := t.cfg.Poll.D()
	if poll <= 0 {
		poll = DefaultPoll
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		t.poll(ctx)
		select {
		case <-t.m.stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// poll discovers files, notices rotation and truncation, and reads what is
// new.
func (t *tailer) poll(ctx context.Context) {
	seen := map[string]bool{}
	var paths []string
	for _, g := range t.cfg.Paths {
		ms, _ := filepath.Glob(g) // patterns were validated
		paths = append(paths, ms...)
	}
	sort.Strings(paths)
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		dev, ino := fileID(fi)
		k := fileState{Path: p, Dev: dev, Inode: ino}.key()
		if seen[k] {
			continue // the same file through two globs or a hard link
		}
		seen[k] = true
		if tf, ok := t.files[k]; ok {
			tf.st.Path = p // renamed within the globs: keep reading
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			t.c.errors.Add(1)
			t.m.log.Warn("cannot open file", "input", t.cfg.Name, "path", p, "err", err)
			continue
		}
		tf := &tailFile{f: f, st: fileState{Path: p, Dev: dev, Inode: ino}}
		if s, ok := t.saved[k]; ok && t.sameHead(tf, s) {
			tf.st.Offset, tf.st.HeadLen, tf.st.HeadHash = s.Offset, s.HeadLen, s.HeadHash
		}
		delete(t.saved, k)
		t.files[k] = tf
	}
	keys := make([]string, 0, len(t.files))
	for k := range t.files {
		keys = append(keys, k)
	}
	// Files rotated away are finished first: their lines predate those of
	// the new file now under the same name.
	sort.Slice(keys, func(i, j int) bool {
		if gi, gj := !seen[keys[i]], !seen[keys[j]]; gi != gj {
			return gi
		}
		return t.files[keys[i]].st.Path < t.files[keys[j]].st.Path
	})
	changed := false
	for _, k := range keys {
		tf := t.files[k]
		gone := !seen[k]
		if t.readFile(ctx, tf, gone) {
			changed = true
		}
		if gone {
			// Rotated away (or deleted) and read to its end.
			_ = tf.f.Close()
			delete(t.files, k)
			changed = true
		}
	}
	if changed {
		if err := t.save(); err != nil {
			t.c.errors.Add(1)
			t.m.log.Error("saving file offsets failed", "input", t.cfg.Name, "err", err)
		}
	}
}

// head hashes the first n bytes of the file.
func head(f *os.File, n int) (string, int, error) {
	buf := make([]byte, n)
	got, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", 0, err
	}
	sum := sha256.Sum256(buf[:got])
	return hex.EncodeToString(sum[:]), got, nil
}

// sameHead reports whether the open file still starts with the bytes
// recorded in s, i.e. it is the same file and was not truncated.
func (t *tailer) sameHead(tf *tailFile, s fileState) bool {
	if s.HeadLen == 0 {
		return true
	}
	h, n, err := head(tf.f, s.HeadLen)
	return err == nil && n == s.HeadLen && h == s.HeadHash
}

// readFile reads new complete lines from tf and delivers them; it reports
// whether the committed offset moved. final means the file is no longer
// under its name: a last line without LF is then taken as it is.
func (t *tailer) readFile(ctx context.Context, tf *tailFile, final bool) bool {
	fi, err := tf.f.Stat()
	if err != nil {
		t.c.errors.Add(1)
		return false
	}
	size := fi.Size()
	moved := false
	if size < tf.st.Offset || !t.sameHead(tf, tf.st) {
		// copytruncate (or rewritten in place): start again at 0.
		t.m.log.Info("file truncated; reading from the start", "input", t.cfg.Name, "path", tf.st.Path)
		tf.st.Offset, tf.st.HeadLen, tf.st.HeadHash = 0, 0, ""
		moved = true
	}
	if tf.st.HeadLen < headSize && size > int64(tf.st.HeadLen) {
		if h, n, err := head(tf.f, headSize); err == nil {
			tf.st.HeadHash, tf.st.HeadLen = h, n
			moved = true
		}
	}
	tf.st.Size = size
	if size == tf.st.Offset {
		return moved
	}
	maxLine := t.cfg.MaxLine
	br := bufio.NewReaderSize(io.NewSectionReader(tf.f, tf.st.Offset, size-tf.st.Offset), maxLine+1)
	pos := tf.st.Offset
	batch := make([]event.Event, 0, min(t.m.o.BatchSize, 256))
	sb := t.m.newBatch()
	var long []byte
	longLen := 0
	commit := func(to int64) bool {
		if len(batch) > 0 {
			if !t.m.deliver(ctx, t.cfg.Name, t.c, batch, sb) {
				return false
			}
			batch = make([]event.Event, 0, cap(batch))
			sb = t.m.newBatch()
		}
		if to != tf.st.Offset {
			tf.st.Offset = to
			moved = true
			// Save after every acknowledged batch: a restart then
			// neither re-reads nor skips anything.
			if err := t.save(); err != nil {
				t.m.log.Error("saving file offsets failed", "input", t.cfg.Name, "err", err)
			}
		}
		return true
	}
	lineStart := pos
	for {
		sl, err := br.ReadSlice('\n')
		pos += int64(len(sl))
		if errors.Is(err, bufio.ErrBufferFull) {
			if long == nil {
				long = append([]byte(nil), sl[:maxLine]...)
			}
			longLen += len(sl)
			continue
		}
		complete := err == nil
		if !complete && !(final && pos > lineStart) {
			break // wait for the rest of the line
		}
		line := bytes.TrimRight(sl, "\r\n")
		fi := frameInfo{}
		if long != nil {
			fi.origLen, fi.maxLine = longLen+len(line), maxLine
			line = long
			long, longLen = nil, 0
			t.c.truncated.Add(1)
		} else if len(line) > maxLine {
			fi.origLen, fi.maxLine = len(line), maxLine
			line = line[:maxLine]
			t.c.truncated.Add(1)
		}
		t.c.bytes.Add(uint64(pos - lineStart))
		lineStart = pos
		if len(bytes.TrimSpace(line)) > 0 {
			e := t.event(line, fi, tf.st.Path)
			t.m.finish(&e, t.c)
			batch = appendEvent(batch, sb, e)
		}
		if len(batch) >= t.m.o.BatchSize {
			if !commit(pos) {
				return moved
			}
		}
		if !complete {
			break
		}
	}
	commit(lineStart)
	return moved
}

// event builds an event from one line according to the input's format.
func (t *tailer) event(line []byte, fi frameInfo, path string) event.Event {
	now := t.m.o.Now()
	var e event.Event
	switch t.cfg.Format {
	case "syslog":
		e = t.p.parse(line, fi, now, InputFile, t.cfg.Name, "")
	case "json":
		var err error
		e, err = jsonEvent(line, now, InputFile)
		if err != nil {
			clean, _ := sanitize(line)
			e = event.Event{Time: now, Received: now, Input: InputFile, Raw: string(line), ParseError: err.Error(),
				Fields: map[string]any{"message": clean}}
		}
		e.Fields["input.name"] = t.cfg.Name
		if fi.origLen > 0 {
			e.ParseError = joinNote(fmt.Sprintf("truncated: line of %d bytes exceeds %d", fi.origLen, fi.maxLine), e.ParseError)
		}
	default:
		clean, notes := sanitize(line)
		e = event.Event{Time: now, Received: now, Input: InputFile, Raw: string(line),
			Fields: map[string]any{"message": clean, "input.name": t.cfg.Name}}
		if fi.origLen > 0 {
			notes = append([]string{fmt.Sprintf("truncated: line of %d bytes exceeds %d", fi.origLen, fi.maxLine)}, notes...)
		}
		switch t.cfg.Format {
		case "nginx-access":
			e.Fields["event.dataset"] = "nginx.access"
		case "apache-access":
			e.Fields["event.dataset"] = "apache.access"
		}
		if t.cfg.Format != "raw" {
			if ts, ok := accessTime(clean); ok {
				e.Time = ts
			}
		}
		for _, n := range notes {
			e.ParseError = joinNote(e.ParseError, n)
		}
	}
	e.Fields["log.file.path"] = path
	return e
}

func joinNote(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

// accessTime reads the "[17/May/2015:10:05:03 +0000]" stamp of the common
// and combined access-log formats.
func accessTime(s string) (time.Time, bool) {
	i := strings.IndexByte(s, '[')
	if i < 0 || len(s) < i+28 || s[i+27] != ']' {
		return time.Time{}, false
	}
	ts, err := time.Parse("02/Jan/2006:15:04:05 -0700", s[i+1:i+27])
	return ts, err == nil
}
