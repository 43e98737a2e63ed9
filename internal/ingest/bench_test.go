package ingest

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nocsoc/nocsoc/internal/event"
)

func utf8Valid(s string) bool { return utf8.ValidString(s) }

type countSink struct {
	n    atomic.Int64
	done chan struct{}
	want int64
}

func (s *countSink) Write(_ context.Context, evs []event.Event) error {
	if s.n.Add(int64(len(evs))) >= s.want {
		select {
		case s.done <- struct{}{}:
		default:
		}
	}
	return nil
}

// BenchmarkTCPOctetThroughput measures TCP octet-counted syslog → framing
// → parse → batch into a no-op sink over loopback, one connection.
func BenchmarkTCPOctetThroughput(b *testing.B) {
	var frames []byte
	const distinct = 1000
	for i := range distinct {
		var m string
		if i%2 == 0 {
			m = fmt.Sprintf("<38>1 2026-03-01T10:00:%02d.123Z web%d sshd %d - - Failed password for invalid user admin from 203.0.113.%d port %d ssh2", i%60, i%10, 1000+i, i%250, 40000+i)
		} else {
			m = fmt.Sprintf("<86>Mar  1 10:00:%02d web%d sudo[%d]: alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/ls %d", i%60, i%10, 2000+i, i)
		}
		frames = fmt.Appendf(frames, "%d %s", len(m), m)
	}
	sink := &countSink{done: make(chan struct{}, 1), want: int64(b.N)}
	m := NewManager(Options{Sink: sink, Location: time.UTC})
	if err := m.Start(context.Background(), Config{Syslog: []SyslogInput{{Name: "tcp", Protocol: "tcp", Listen: "127.0.0.1:0"}}}); err != nil {
		b.Fatal(err)
	}
	defer m.Stop()
	c, err := net.Dial("tcp", m.Addrs()["tcp"].String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ResetTimer()
	start := time.Now()
	go func() {
		for sent := 0; sent < b.N; sent += distinct {
			if _, err := c.Write(frames); err != nil {
				return
			}
		}
	}()
	for sink.n.Load() < int64(b.N) {
		<-sink.done
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}
