package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

// Buffer is the agent's on-disk queue of batches not yet accepted by the
// server: one file per batch, named by its sequence number so that replay
// follows the order of collection. It is bounded by a number of batches
// and a number of bytes; when full, the oldest batches are dropped and
// counted, because fresh data about an endpoint matters more than old.
type Buffer struct {
	dir      string
	maxCount int
	maxBytes int64

	mu      sync.Mutex
	files   []bufFile // oldest first
	bytes   int64
	dropped uint64
}

type bufFile struct {
	seq  uint64
	size int64
}

const droppedFile = "dropped"

// OpenBuffer opens (creating if needed) the buffer in dir. maxCount and
// maxBytes must be positive.
func OpenBuffer(dir string, maxCount int, maxBytes int64) (*Buffer, error) {
	if maxCount <= 0 {
		return nil, fmt.Errorf("open buffer: max batches must be positive (got %d)", maxCount)
	}
	if maxBytes <= 0 {
		return nil, fmt.Errorf("open buffer: max bytes must be positive (got %d)", maxBytes)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open buffer: %w", err)
	}
	b := &Buffer{dir: dir, maxCount: maxCount, maxBytes: maxBytes}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open buffer: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			// A write interrupted by a crash: never acknowledged, never sent.
			_ = os.Remove(filepath.Join(dir, name))
			continue
		}
		seqStr, ok := strings.CutSuffix(name, ".json")
		if !ok {
			continue
		}
		seq, err := strconv.ParseUint(seqStr, 10, 64)
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("open buffer: %w", err)
		}
		b.files = append(b.files, bufFile{seq: seq, size: info.Size()})
		b.bytes += info.Size()
	}
	slices.SortFunc(b.files, func(x, y bufFile) int {
		switch {
		case x.seq < y.seq:
			return -1
		case x.seq > y.seq:
			return 1
		}
		return 0
	})
	if raw, err := os.ReadFile(filepath.Join(dir, droppedFile)); err == nil {
		b.dropped, _ = strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open buffer: %w", err)
	}
	return b, nil
}

func (b *Buffer) path(seq uint64) string {
	return filepath.Join(b.dir, fmt.Sprintf("%020d.json", seq))
}

// Put stores a batch durably, dropping the oldest batches if the buffer
// would exceed its bounds. A batch larger than the byte bound on its own is
// refused.
func (b *Buffer) Put(batch agentproto.Batch) error {
	raw, err := json.Marshal(batch)
	if err != nil {
		return fmt.Errorf("buffer put: %w", err)
	}
	size := int64(len(raw))
	if size > b.maxBytes {
		return fmt.Errorf("buffer put: batch %d is %d bytes, more than the buffer's %d", batch.Seq, size, b.maxBytes)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if n := len(b.files); n > 0 && batch.Seq <= b.files[n-1].seq {
		return fmt.Errorf("buffer put: seq %d is not after the newest buffered seq %d", batch.Seq, b.files[n-1].seq)
	}
	var dropped uint64
	for len(b.files) > 0 && (len(b.files)+1 > b.maxCount || b.bytes+size > b.maxBytes) {
		old := b.files[0]
		if err := os.Remove(b.path(old.seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("buffer put: drop oldest: %w", err)
		}
		b.files = b.files[1:]
		b.bytes -= old.size
		dropped++
	}
	if dropped > 0 {
		b.dropped += dropped
		if err := writeFileAtomic(filepath.Join(b.dir, droppedFile), []byte(strconv.FormatUint(b.dropped, 10)), 0o600); err != nil {
			return fmt.Errorf("buffer put: %w", err)
		}
	}
	if err := writeFileAtomic(b.path(batch.Seq), raw, 0o600); err != nil {
		return fmt.Errorf("buffer put: %w", err)
	}
	b.files = append(b.files, bufFile{seq: batch.Seq, size: size})
	b.bytes += size
	return nil
}

// Oldest returns the oldest buffered batch; ok is false when the buffer is
// empty.
func (b *Buffer) Oldest() (batch agentproto.Batch, ok bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.files) == 0 {
		return agentproto.Batch{}, false, nil
	}
	raw, err := os.ReadFile(b.path(b.files[0].seq))
	if err != nil {
		return agentproto.Batch{}, false, fmt.Errorf("buffer read seq %d: %w", b.files[0].seq, err)
	}
	if err := json.Unmarshal(raw, &batch); err != nil {
		return agentproto.Batch{}, false, fmt.Errorf("buffer read seq %d: %w", b.files[0].seq, err)
	}
	return batch, true, nil
}

// Remove deletes the batch with seq once the server has accepted it.
func (b *Buffer) Remove(seq uint64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := slices.IndexFunc(b.files, func(f bufFile) bool { return f.seq == seq })
	if i < 0 {
		return nil // dropped meanwhile
	}
	if err := os.Remove(b.path(seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("buffer remove seq %d: %w", seq, err)
	}
	b.bytes -= b.files[i].size
	b.files = slices.Delete(b.files, i, i+1)
	return nil
}

// Len is the number of buffered batches.
func (b *Buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.files)
}

// Dropped is how many batches the bound has discarded, ever.
func (b *Buffer) Dropped() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}

// LastSeq is the newest buffered sequence number (0 when empty).
func (b *Buffer) LastSeq() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.files) == 0 {
		return 0
	}
	return b.files[len(b.files)-1].seq
}

// writeFileAtomic writes data to path through a synced temporary file and
// a rename, so a crash leaves either the old or the new content.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
