//go:build unix

package schedule

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

// BenchmarkSchedule10k schedules 10,000 checks every second with a no-op
// probe, in real time, and measures the scheduler's own cost per run as
// process CPU time (user+system) per run, reported as cpu-ns/run. ns/op is
// wall time per run and mostly reflects the offered rate (10,000 runs/s),
// not the overhead.
func BenchmarkSchedule10k(b *testing.B) {
	const checks = 10000
	specs := make([]check.Spec, checks)
	for i := range specs {
		specs[i] = check.Spec{Name: fmt.Sprintf("bench-%05d", i), Type: check.TypePush,
			Interval: check.Duration(time.Second), Timeout: check.Duration(time.Second)}
	}
	var runs atomic.Int64
	target := int64(b.N)
	done := make(chan struct{})
	s := New(Options{
		Probe: func(context.Context, check.Spec) check.Result { return check.Result{OK: true} },
		Report: func(check.Result) {
			if runs.Add(1) == target {
				close(done)
			}
		},
	})
	s.Set(specs)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)

	cpu0 := cpuTime(b)
	b.ResetTimer()
	go func() { errc <- s.Run(ctx) }()
	<-done
	b.StopTimer()
	cpu := cpuTime(b) - cpu0
	cancel()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/run")
	st := s.Stats()
	b.ReportMetric(float64(st.Late), "late")
	b.ReportMetric(float64(st.Skipped), "skipped")
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
