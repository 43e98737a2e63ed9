// Package loadgentest gives benchmarks the events the server really
// receives under load: the load generator's mixed Linux stream (sshd, sudo,
// cron, nginx, postfix, firewall lines), sent over loopback to a real TCP
// syslog input and parsed and normalized there, as in the end-to-end
// benchmark (bench/soc-e2e.sh).
package loadgentest

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/event"
	"github.com/nocsoc/nocsoc/internal/ingest"
	"github.com/nocsoc/nocsoc/internal/loadgen"
	"github.com/nocsoc/nocsoc/internal/normalize"
)

// Start is the time of the first generated line; each next line is 20 µs
// later (50,000 lines a second of event time).
var Start = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// Frames returns n lines of the generator's stream (seed 2), octet-counted
// as `nocsoc loadgen syslog --framing octet` sends them.
func Frames(tb testing.TB, n int) []byte {
	tb.Helper()
	gen, err := loadgen.NewSyslogGen(2, loadgen.FramingOctet)
	if err != nil {
		tb.Fatal(err)
	}
	var frames []byte
	for i := range n {
		frames = gen.Append(frames, Start.Add(time.Duration(i)*20*time.Microsecond))
	}
	return frames
}

// Events sends frames (n lines, from Frames) over one loopback connection
// to a TCP syslog input named syslog-tcp and returns the n normalized
// events it delivers, in order.
func Events(tb testing.TB, frames []byte, n int) []event.Event {
	tb.Helper()
	sink := &collectSink{want: n, done: make(chan struct{}, 1)}
	send(tb, frames, sink, n)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	return sink.evs[:n]
}

// Ingest is Events without keeping the events: the sink only counts them,
// as a pipeline that passes them on holds none for long.
func Ingest(tb testing.TB, frames []byte, n int) {
	tb.Helper()
	send(tb, frames, &countSink{want: n, done: make(chan struct{}, 1)}, n)
}

type doneSink interface {
	ingest.Sink
	doneCh() chan struct{}
	count() int
}

func send(tb testing.TB, frames []byte, sink doneSink, n int) {
	tb.Helper()
	m := ingest.NewManager(ingest.Options{Sink: sink, Normalize: normalize.Normalize, Location: time.UTC})
	if err := m.Start(context.Background(), ingest.Config{Syslog: []ingest.SyslogInput{{Name: "syslog-tcp", Protocol: "tcp", Listen: "127.0.0.1:0"}}}); err != nil {
		tb.Fatal(err)
	}
	defer m.Stop()
	c, err := net.Dial("tcp", m.Addrs()["syslog-tcp"].String())
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(frames); err != nil {
		tb.Fatal(err)
	}
	select {
	case <-sink.doneCh():
	case <-time.After(time.Minute):
		tb.Fatalf("ingest delivered %d of %d events in a minute", sink.count(), n)
	}
}

// collectSink keeps every event the ingest manager delivers.
type collectSink struct {
	mu   sync.Mutex
	evs  []event.Event
	want int
	done chan struct{}
}

func (s *collectSink) Write(_ context.Context, evs []event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evs = append(s.evs, evs...)
	if len(s.evs) >= s.want {
		select {
		case s.done <- struct{}{}:
		default:
		}
	}
	return nil
}

func (s *collectSink) doneCh() chan struct{} { return s.done }

func (s *collectSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.evs)
}

// countSink counts the events delivered and drops them.
type countSink struct {
	n    atomic.Int64
	want int
	done chan struct{}
}

func (s *countSink) Write(_ context.Context, evs []event.Event) error {
	if s.n.Add(int64(len(evs))) >= int64(s.want) {
		select {
		case s.done <- struct{}{}:
		default:
		}
	}
	return nil
}

func (s *countSink) doneCh() chan struct{} { return s.done }
func (s *countSink) count() int            { return int(s.n.Load()) }
