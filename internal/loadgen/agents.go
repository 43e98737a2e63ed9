package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

// AgentOptions configures simulated agents.
type AgentOptions struct {
	// Server is the nocsoc base URL.
	Server string
	// Count agents, each heartbeating and sending a metrics batch every
	// Interval, their phases spread evenly over the interval.
	Count    int
	Interval time.Duration
	// Duration bounds the run after enrollment; 0 runs until ctx ends.
	Duration time.Duration
	// Token is an admin API token: one single-use enrollment token is
	// created per agent. EnrollToken instead serves a single agent.
	Token       string
	EnrollToken string
	// Connections bounds the keep-alive connections to the server.
	Connections int
	// EnrollConcurrency is the number of enrollments in flight.
	EnrollConcurrency int
	// HostPrefix names the agents <prefix>-00001 …
	HostPrefix string
	// Progress, when set, receives a line every ProgressEvery.
	Progress      io.Writer
	ProgressEvery time.Duration
}

// AgentResult summarises a run.
type AgentResult struct {
	Agents        int
	Enrolled      int
	EnrollTime    time.Duration
	Elapsed       time.Duration
	Heartbeats    int64
	Batches       int64
	Samples       int64
	Errors        int64
	FirstError    string
	P50, P99, Max time.Duration
	CPU           time.Duration
}

func (r AgentResult) String() string {
	el := r.Elapsed.Seconds()
	if el <= 0 {
		el = math.SmallestNonzeroFloat64
	}
	s := fmt.Sprintf("agents=%d enrolled=%d enroll_s=%.1f elapsed=%.1fs heartbeats=%d batches=%d samples=%d errors=%d requests_per_s=%.1f samples_per_s=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f loadgen_cpu_cores=%.2f",
		r.Agents, r.Enrolled, r.EnrollTime.Seconds(), r.Elapsed.Seconds(), r.Heartbeats, r.Batches, r.Samples, r.Errors,
		float64(r.Heartbeats+r.Batches)/el, float64(r.Samples)/el, ms(r.P50), ms(r.P99), ms(r.Max), r.CPU.Seconds()/el)
	if r.FirstError != "" {
		s += fmt.Sprintf(" first_error=%q", r.FirstError)
	}
	return s
}

func (o *AgentOptions) check() error {
	switch {
	case o.Server == "":
		return &FlagError{"server", "is required"}
	case o.Count <= 0 || o.Count > 100000:
		return &FlagError{"count", fmt.Sprintf("must be 1-100000 (got %d)", o.Count)}
	case o.Interval < 10*time.Millisecond:
		return &FlagError{"interval", fmt.Sprintf("must be at least 10ms (got %s)", o.Interval)}
	case o.Token == "" && o.EnrollToken == "":
		return &FlagError{"token", "an admin API token (or --enroll-token for a single agent) is required"}
	case o.Token == "" && o.Count > 1:
		return &FlagError{"enroll-token", "is single-use: it enrolls one agent; give --token to create one per agent"}
	}
	o.Server = strings.TrimSuffix(o.Server, "/")
	if o.Connections <= 0 {
		o.Connections = 256
	}
	if o.EnrollConcurrency <= 0 {
		o.EnrollConcurrency = 16
	}
	if o.HostPrefix == "" {
		o.HostPrefix = "lg-agent"
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 30 * time.Second
	}
	return nil
}

type simAgent struct {
	id, cred, host string
	seq            uint64
	rng            *mrand.Rand
	diskUsed       [2]float64
}

type agentRun struct {
	o      AgentOptions
	client *http.Client
	hb, bt atomic.Int64
	smp    atomic.Int64
	errs   atomic.Int64
	first  atomic.Pointer[string]
	mu     sync.Mutex
	lat    []time.Duration
}

// RunAgents enrolls Count simulated agents, then has each send a
// heartbeat and a metrics batch (about 40 samples, like the real agent)
// every Interval over keep-alive HTTP, until Duration or ctx ends.
func RunAgents(ctx context.Context, o AgentOptions) (AgentResult, error) {
	if err := o.check(); err != nil {
		return AgentResult{}, err
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        o.Connections,
		MaxIdleConnsPerHost: o.Connections,
		MaxConnsPerHost:     o.Connections,
		IdleConnTimeout:     2 * o.Interval,
	}
	defer tr.CloseIdleConnections()
	r := &agentRun{o: o, client: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
	res := AgentResult{Agents: o.Count}

	start := time.Now()
	agents, err := r.enrollAll(ctx)
	res.Enrolled, res.EnrollTime = len(agents), time.Since(start)
	if err != nil {
		return res, err
	}
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "enrolled: %d agents in %.1fs; running\n", len(agents), res.EnrollTime.Seconds())
	}

	runCtx := ctx
	if o.Duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	t0 := time.Now()
	cpu1 := processCPU()
	var wg sync.WaitGroup
	for i, a := range agents {
		offset := time.Duration(int64(o.Interval) * int64(i) / int64(len(agents)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.loop(runCtx, a, t0.Add(offset))
		}()
	}
	if o.Progress != nil {
		go r.progress(runCtx, t0)
	}
	wg.Wait()
	res.Elapsed = time.Since(t0)
	res.CPU = processCPU() - cpu1
	res.Heartbeats, res.Batches, res.Samples, res.Errors = r.hb.Load(), r.bt.Load(), r.smp.Load(), r.errs.Load()
	if p := r.first.Load(); p != nil {
		res.FirstError = *p
	}
	r.mu.Lock()
	res.P50, _, res.P99, res.Max = quantiles(r.lat)
	r.mu.Unlock()
	return res, nil
}

func (r *agentRun) progress(ctx context.Context, t0 time.Time) {
	t := time.NewTicker(r.o.ProgressEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fmt.Fprintf(r.o.Progress, "progress: elapsed=%.0fs heartbeats=%d batches=%d errors=%d\n",
				time.Since(t0).Seconds(), r.hb.Load(), r.bt.Load(), r.errs.Load())
		}
	}
}

func (r *agentRun) fail(err error) {
	r.errs.Add(1)
	s := err.Error()
	r.first.CompareAndSwap(nil, &s)
}

// post sends v as JSON and decodes a 2xx answer into out.
func (r *agentRun) post(ctx context.Context, path, bearer string, v, out any) (time.Duration, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.o.Server+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	start := time.Now()
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	d := time.Since(start)
	if err != nil {
		return d, err
	}
	if resp.StatusCode/100 != 2 {
		return d, fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return d, fmt.Errorf("POST %s: %w", path, err)
		}
	}
	return d, nil
}

func (r *agentRun) enrollAll(ctx context.Context) ([]*simAgent, error) {
	out := make([]*simAgent, r.o.Count)
	next := atomic.Int64{}
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range min(r.o.EnrollConcurrency, r.o.Count) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= r.o.Count || ctx.Err() != nil || firstErr.Load() != nil {
					return
				}
				a, err := r.enroll(ctx, i)
				if err != nil {
					err = fmt.Errorf("enroll agent %d: %w", i+1, err)
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				out[i] = a
			}
		}()
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return nil, *p
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func (r *agentRun) enroll(ctx context.Context, i int) (*simAgent, error) {
	tok := r.o.EnrollToken
	if r.o.Token != "" {
		var t struct {
			Token string `json:"token"`
		}
		if _, err := r.post(ctx, "/api/v1/enrollment-tokens", r.o.Token, map[string]string{"ttl": "1h"}, &t); err != nil {
			return nil, err
		}
		tok = t.Token
	}
	host := fmt.Sprintf("%s-%05d", r.o.HostPrefix, i+1)
	var er agentproto.EnrollResponse
	if _, err := r.post(ctx, agentproto.PathEnroll, "", agentproto.EnrollRequest{Token: tok, Hostname: host, OS: "linux",
		Platform: "debian 13", Kernel: "6.12.0", Arch: "amd64", AgentVersion: "loadgen"}, &er); err != nil {
		return nil, err
	}
	a := &simAgent{id: er.AgentID, cred: er.Credential, host: host, rng: mrand.New(mrand.NewPCG(uint64(i), 42))}
	a.diskUsed = [2]float64{20e9 + a.rng.Float64()*40e9, 100e9 + a.rng.Float64()*300e9}
	return a, nil
}

func (r *agentRun) loop(ctx context.Context, a *simAgent, first time.Time) {
	t := time.NewTimer(time.Until(first))
	defer t.Stop()
	next := first
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.tick(ctx, a)
		next = next.Add(r.o.Interval)
		for !next.After(time.Now()) {
			next = next.Add(r.o.Interval) // behind: skip, never burst
		}
		t.Reset(time.Until(next))
	}
}

func (r *agentRun) record(d time.Duration) {
	r.mu.Lock()
	r.lat = append(r.lat, d)
	r.mu.Unlock()
}

// tick is one interval of one agent: a heartbeat, then a metrics batch.
func (r *agentRun) tick(ctx context.Context, a *simAgent) {
	now := time.Now().UTC()
	hb := agentproto.Heartbeat{AgentID: a.id, SentAt: now, IntervalMS: r.o.Interval.Milliseconds(), Hostname: a.host}
	d, err := r.post(ctx, agentproto.PathHeartbeat, a.cred, hb, nil)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		r.fail(err)
		return
	}
	r.hb.Add(1)
	r.record(d)
	a.seq++
	b := agentproto.Batch{BatchID: uuid4(), AgentID: a.id, Seq: a.seq, SentAt: now, Metrics: a.samples(now)}
	var resp agentproto.BatchResponse
	d, err = r.post(ctx, agentproto.PathBatches, a.cred, b, &resp)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		r.fail(err)
		return
	}
	r.bt.Add(1)
	r.smp.Add(int64(len(b.Metrics)))
	r.record(d)
}

// samples are the series the real agent sends (internal/agent/collect.go)
// with plausible values; the data disk grows slowly.
func (a *simAgent) samples(now time.Time) []agentproto.Sample {
	out := make([]agentproto.Sample, 0, 40)
	add := func(name string, v float64, kv ...string) {
		s := agentproto.Sample{Time: now, Name: name, Value: v}
		if len(kv) == 2 {
			s.Labels = map[string]string{kv[0]: kv[1]}
		}
		out = append(out, s)
	}
	f := a.rng.Float64
	add("cpu.percent", 5+f()*30)
	add("load.1", f()*2)
	add("load.5", f()*1.5)
	add("load.15", f())
	add("mem.total_bytes", 8<<30)
	used := float64(2<<30) + f()*float64(4<<30)
	add("mem.used_bytes", used)
	add("mem.available_bytes", 8<<30-used)
	add("mem.used_percent", used/(8<<30)*100)
	add("swap.total_bytes", 2<<30)
	add("swap.used_bytes", f()*float64(64<<20))
	add("swap.used_percent", f()*3)
	for i, m := range []string{"/", "/var"} {
		total := []float64{100e9, 500e9}[i]
		a.diskUsed[i] = math.Min(a.diskUsed[i]+f()*2e6, total)
		add("disk.total_bytes", total, "mount", m)
		add("disk.used_bytes", a.diskUsed[i], "mount", m)
		add("disk.used_percent", a.diskUsed[i]/total*100, "mount", m)
		add("disk.inodes_used", 200000+f()*1000, "mount", m)
		add("disk.inodes_free", 6e6, "mount", m)
		add("disk.inodes_used_percent", 3.2, "mount", m)
	}
	for _, n := range []string{"eth0", "lo"} {
		add("net.rx_bytes_per_second", f()*1e6, "interface", n)
		add("net.tx_bytes_per_second", f()*1e6, "interface", n)
		add("net.rx_errors_total", 0, "interface", n)
		add("net.tx_errors_total", 0, "interface", n)
		add("net.rx_dropped_total", 0, "interface", n)
	}
	add("host.uptime_seconds", float64(now.Unix()%1e7))
	add("host.reboots_total", 0)
	add("agent.buffer_dropped_total", 0)
	return out
}

func uuid4() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func agentsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("agents")
	var o AgentOptions
	fs.StringVar(&o.Server, "server", "", "nocsoc base URL, e.g. http://127.0.0.1:8080")
	fs.IntVar(&o.Count, "count", 5000, "simulated agents")
	fs.DurationVar(&o.Interval, "interval", 30*time.Second, "heartbeat and metrics interval of every agent")
	fs.DurationVar(&o.Duration, "duration", 0, "how long to run after enrollment (0: until interrupted)")
	fs.StringVar(&o.Token, "token", "", "admin API token: one enrollment token is created per agent")
	fs.StringVar(&o.EnrollToken, "enroll-token", "", "a single-use enrollment token (only with --count 1)")
	fs.IntVar(&o.Connections, "connections", 256, "keep-alive connections to the server at most")
	fs.IntVar(&o.EnrollConcurrency, "enroll-concurrency", 16, "enrollments in flight")
	fs.StringVar(&o.HostPrefix, "host-prefix", "lg-agent", "agent hostnames: PREFIX-00001 …")
	fs.DurationVar(&o.ProgressEvery, "progress", 30*time.Second, "progress line interval on stderr")
	if err := parse(fs, args); err != nil {
		return err
	}
	o.Progress = stderr
	res, err := RunAgents(ctx, o)
	if err != nil {
		return usageIfFlag("agents", err)
	}
	_, err = fmt.Fprintln(stdout, res.String())
	return err
}
