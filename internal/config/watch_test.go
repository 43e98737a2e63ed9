package config

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestWatchFiresOnChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nocsoc.yaml")
	write(t, path, "server: {}\n")
	ctx, cancel := context.WithCancel(t.Context())
	changed := make(chan struct{}, 1)
	done := make(chan struct{})
	started := make(chan struct{})
	go func() {
		defer close(done)
		watch(ctx, path, 5*time.Millisecond, func() {
			select {
			case changed <- struct{}{}:
			default:
			}
		}, func() { close(started) })
	}()
	<-started
	write(t, path, "server: {workers: 8}\n")
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not report the change within 10s")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return after its context ended")
	}
}

// TestWatchContentOnly runs in a synctest bubble, so the poll interval is
// fake time and "no call happened" can be asserted without waiting.
func TestWatchContentOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nocsoc.yaml")
		write(t, path, "a: 1\n")
		var calls atomic.Int32
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			Watch(ctx, path, time.Second, func() { calls.Add(1) })
		}()
		poll := func() {
			time.Sleep(1500 * time.Millisecond)
			synctest.Wait()
		}
		steps := []struct {
			name string
			do   func()
			want int32
		}{
			{"nothing", func() {}, 0},
			{"touch", func() {
				future := time.Now().Add(time.Hour)
				if err := os.Chtimes(path, future, future); err != nil {
					t.Fatal(err)
				}
			}, 0},
			{"same content rewritten", func() { write(t, path, "a: 1\n") }, 0},
			{"new content", func() { write(t, path, "a: 2\n") }, 1},
			{"removed", func() { os.Remove(path) }, 1},
			{"back with the same content", func() { write(t, path, "a: 2\n") }, 1},
			{"same length, new content", func() { write(t, path, "a: 3\n") }, 2},
		}
		for _, s := range steps {
			s.do()
			poll()
			if got := calls.Load(); got != s.want {
				t.Fatalf("after %s: %d calls, want %d", s.name, got, s.want)
			}
		}
		cancel()
		<-done
	})
}

func TestWatchFileAppears(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nocsoc.yaml")
		var calls atomic.Int32
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go Watch(ctx, path, 0, func() { calls.Add(1) })
		time.Sleep(3 * DefaultWatchInterval)
		synctest.Wait()
		if calls.Load() != 0 {
			t.Fatalf("called while the file was missing")
		}
		write(t, path, "a: 1\n")
		time.Sleep(DefaultWatchInterval + time.Millisecond)
		synctest.Wait()
		if got := calls.Load(); got != 1 {
			t.Fatalf("%d calls after the file appeared, want 1", got)
		}
	})
}
