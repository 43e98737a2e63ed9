package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

func batch(seq uint64) agentproto.Batch {
	return agentproto.Batch{BatchID: newUUID(), AgentID: "a1", Seq: seq, Metrics: []agentproto.Sample{{Name: "x", Value: float64(seq)}}}
}

func drain(t *testing.T, b *Buffer) []uint64 {
	t.Helper()
	var seqs []uint64
	for {
		got, ok, err := b.Oldest()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return seqs
		}
		seqs = append(seqs, got.Seq)
		if err := b.Remove(got.Seq); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBuffer(t *testing.T) {
	tests := []struct {
		name        string
		max         int
		maxBytes    int64
		put         int
		wantSeqs    []uint64
		wantDropped uint64
	}{
		{"under bound keeps all in order", 10, 1 << 20, 5, []uint64{1, 2, 3, 4, 5}, 0},
		{"count bound drops oldest", 3, 1 << 20, 7, []uint64{5, 6, 7}, 4},
		{"byte bound drops oldest", 100, 300, 6, nil, 0}, // checked below
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			b, err := OpenBuffer(dir, tt.max, tt.maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= tt.put; i++ {
				if err := b.Put(batch(uint64(i))); err != nil {
					t.Fatal(err)
				}
			}
			// Reopen: the buffer and its drop counter survive a restart.
			b2, err := OpenBuffer(dir, tt.max, tt.maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			dropped := b2.Dropped()
			seqs := drain(t, b2)
			if tt.wantSeqs == nil {
				// Byte bound: whatever is kept is the newest, contiguous,
				// and the drops account for the rest.
				if len(seqs) == 0 || seqs[len(seqs)-1] != uint64(tt.put) || uint64(len(seqs))+dropped != uint64(tt.put) || dropped == 0 {
					t.Fatalf("kept %v, dropped %d of %d", seqs, dropped, tt.put)
				}
				return
			}
			if !equalSeqs(seqs, tt.wantSeqs) {
				t.Errorf("replayed %v, want %v", seqs, tt.wantSeqs)
			}
			if dropped != tt.wantDropped {
				t.Errorf("dropped = %d, want %d", dropped, tt.wantDropped)
			}
		})
	}
}

func equalSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBufferRefusals(t *testing.T) {
	dir := t.TempDir()
	b, err := OpenBuffer(dir, 10, 200)
	if err != nil {
		t.Fatal(err)
	}
	big := batch(1)
	big.Metrics[0].Name = strings.Repeat("m", 500)
	if err := b.Put(big); err == nil || !strings.Contains(err.Error(), "more than the buffer's 200") {
		t.Errorf("oversize put err = %v", err)
	}
	if err := b.Put(batch(5)); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(batch(5)); err == nil || !strings.Contains(err.Error(), "seq 5 is not after") {
		t.Errorf("out of order put err = %v", err)
	}
	if b.Len() != 1 {
		t.Errorf("Len = %d after refusals, want 1", b.Len())
	}
	if _, err := OpenBuffer(dir, 0, 1); err == nil || !strings.Contains(err.Error(), "max batches") {
		t.Errorf("zero bound err = %v", err)
	}
	// Leftover temporary files of an interrupted write are discarded.
	if err := os.WriteFile(filepath.Join(dir, "00000000000000000009.json.tmp"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	b2, err := OpenBuffer(dir, 10, 200)
	if err != nil {
		t.Fatal(err)
	}
	if b2.Len() != 1 {
		t.Errorf("Len after reopen = %d, want 1", b2.Len())
	}
	fi, err := os.Stat(filepath.Join(dir, "00000000000000000005.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("buffered file mode = %v, %v; want 0600", fi.Mode(), err)
	}
}

// TestNoServerDependencies keeps the agent free of server-only packages:
// its binary must build without cgo and stay small.
func TestNoServerDependencies(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not on PATH")
	}
	out, err := exec.Command("go", "list", "-deps", "github.com/nocsoc/nocsoc/internal/agent").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"duckdb", "modernc.org/sqlite", "nocsoc/internal/store", "nocsoc/internal/eventstore", "nocsoc/internal/web", "nocsoc/internal/app"} {
			if strings.Contains(dep, bad) {
				t.Errorf("agent depends on %s", dep)
			}
		}
	}
}
