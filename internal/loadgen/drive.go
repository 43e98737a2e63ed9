package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

// DriveOptions configures a throughput run.
type DriveOptions struct {
	// Target is the URL every probe fetches.
	Target string
	// Exporter is the base URL of blackbox_exporter (RunBlackbox only).
	Exporter string
	// Module is the blackbox_exporter module (RunBlackbox only; default
	// http_2xx).
	Module string
	// Concurrency is the number of probes in flight at once.
	Concurrency int
	// Duration bounds the run.
	Duration time.Duration
	// MaxProbes, when positive, ends the run after that many probes; tests
	// use it so they do not depend on wall time.
	MaxProbes int64
	// Timeout bounds one probe; default 5s.
	Timeout time.Duration
}

// Report is the outcome of a throughput run.
type Report struct {
	Driver      string
	Target      string
	Concurrency int
	// Probes counts completed probes; OK those that succeeded.
	Probes, OK int64
	// FirstError is the error of the first failed probe, if any.
	FirstError string
	Elapsed    time.Duration
	// CPU is the user+system CPU time this process used during the run
	// (0 where the platform cannot say).
	CPU time.Duration
}

// Rate returns successful probes per second.
func (r Report) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// String renders the report as one line of key=value pairs for scripts.
// cpu and ok_per_cpu_s are this process's: for RunBlackbox that is the
// driver only, since the exporter's CPU is in another process.
func (r Report) String() string {
	s := fmt.Sprintf("driver=%s concurrency=%d probes=%d ok=%d failed=%d elapsed=%.2fs rate=%.1f/s cpu=%.2fs cpu_cores=%.2f",
		r.Driver, r.Concurrency, r.Probes, r.OK, r.Probes-r.OK, r.Elapsed.Seconds(), r.Rate(), r.CPU.Seconds(), r.CPU.Seconds()/max(r.Elapsed.Seconds(), 1e-9))
	if r.CPU > 0 {
		s += fmt.Sprintf(" ok_per_cpu_s=%.0f", float64(r.OK)/r.CPU.Seconds())
	}
	if r.FirstError != "" {
		s += fmt.Sprintf(" first_error=%q", r.FirstError)
	}
	return s
}

func (o *DriveOptions) validate(exporter bool) error {
	if u, err := url.Parse(o.Target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &FlagError{"target", fmt.Sprintf("must be an http:// or https:// URL, got %q", o.Target)}
	}
	if exporter {
		if u, err := url.Parse(o.Exporter); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &FlagError{"exporter", fmt.Sprintf("must be an http:// or https:// URL, got %q", o.Exporter)}
		}
		if o.Module == "" {
			o.Module = "http_2xx"
		}
	}
	if o.Concurrency < 1 || o.Concurrency > 10000 {
		return &FlagError{"concurrency", fmt.Sprintf("must be between 1 and 10000, got %d", o.Concurrency)}
	}
	if o.Duration <= 0 {
		return &FlagError{"duration", fmt.Sprintf("must be positive, got %s", o.Duration)}
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	return nil
}

// RunProbes drives nocsoc's http prober (check.Prober.Probe, one fresh
// connection per probe, as the scheduler runs it) against o.Target.
func RunProbes(ctx context.Context, o DriveOptions) (Report, error) {
	if err := o.validate(false); err != nil {
		return Report{}, err
	}
	p := check.NewProber(check.ProberOptions{})
	spec := check.Spec{Name: "loadgen", Type: check.TypeHTTP, Target: o.Target,
		Interval: check.Duration(time.Minute), Timeout: check.Duration(o.Timeout)}
	spec.Normalize()
	if err := spec.Validate(); err != nil {
		return Report{}, &FlagError{"target", err.Error()}
	}
	return drive(ctx, "nocsoc-prober", o, func(ctx context.Context) (bool, string) {
		r := p.Probe(ctx, spec)
		return r.OK, r.Error
	})
}

// RunBlackbox drives blackbox_exporter's /probe endpoint with o.Module
// against o.Target; a probe succeeds when the exporter reports
// probe_success 1. The driver keeps its connections to the exporter alive,
// so its own overhead stays small; the exporter's probes are its own.
func RunBlackbox(ctx context.Context, o DriveOptions) (Report, error) {
	if err := o.validate(true); err != nil {
		return Report{}, err
	}
	u, _ := url.Parse(o.Exporter)
	u = u.JoinPath("probe")
	u.RawQuery = url.Values{"module": {o.Module}, "target": {o.Target}}.Encode()
	probeURL := u.String()
	tr := &http.Transport{MaxIdleConns: o.Concurrency, MaxIdleConnsPerHost: o.Concurrency, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: o.Timeout + 5*time.Second}
	// The exporter reads this header to bound its probe, as it would from
	// a Prometheus scrape.
	timeoutSecs := fmt.Sprintf("%g", o.Timeout.Seconds())
	success := []byte("\nprobe_success 1\n")
	return drive(ctx, "blackbox-exporter", o, func(ctx context.Context) (bool, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, probeURL, nil)
		if err != nil {
			return false, err.Error()
		}
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", timeoutSecs)
		resp, err := client.Do(req)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return false, "read exporter response: " + err.Error()
		}
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Sprintf("exporter status %d: %.200s", resp.StatusCode, body)
		}
		if !bytes.Contains(body, success) {
			return false, "probe_success is not 1"
		}
		return true, ""
	})
}

// drive runs probe from o.Concurrency goroutines until o.Duration passes,
// o.MaxProbes probes were started, or ctx is cancelled. Probes cut short by
// the end of the run are not counted.
func drive(ctx context.Context, name string, o DriveOptions, probe func(context.Context) (ok bool, errText string)) (Report, error) {
	rctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var issued, done, okN atomic.Int64
	var errOnce sync.Once
	var firstErr string
	cpu0 := processCPU()
	start := time.Now()
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Go(func() {
			for rctx.Err() == nil {
				if o.MaxProbes > 0 && issued.Add(1) > o.MaxProbes {
					return
				}
				ok, errText := probe(rctx)
				if rctx.Err() != nil && !ok {
					return // cut short by the end of the run
				}
				done.Add(1)
				if ok {
					okN.Add(1)
				} else {
					errOnce.Do(func() { firstErr = errText })
				}
			}
		})
	}
	wg.Wait()
	r := Report{Driver: name, Target: o.Target, Concurrency: o.Concurrency,
		Probes: done.Load(), OK: okN.Load(), FirstError: firstErr,
		Elapsed: time.Since(start), CPU: processCPU() - cpu0}
	if ctx.Err() != nil {
		return r, fmt.Errorf("loadgen %s: %w", name, ctx.Err())
	}
	return r, nil
}
