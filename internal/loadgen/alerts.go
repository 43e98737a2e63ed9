package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Alert stream formats of RunAlerts.
const (
	// FormatEvents is nocsoc's PagerDuty Events API v2 endpoint; one
	// event per request, the key is the routing_key.
	FormatEvents = "events"
	// FormatAlertmanager is nocsoc's Alertmanager webhook v4 endpoint; the
	// key is sent as a bearer token.
	FormatAlertmanager = "alertmanager"
	// FormatAMv2 is Prometheus Alertmanager's own POST /api/v2/alerts (a
	// JSON list of postable alerts), to run the same stream against it.
	FormatAMv2 = "am-v2"
)

// SentMarker precedes the send time (unix nanoseconds) that every
// generated alert carries in its summary, so a webhook receiver can
// measure the delay from the send to the notification.
const SentMarker = "sent_ns="

// AlertOptions configures an alert stream.
type AlertOptions struct {
	// URL is the full endpoint URL (…/api/v1/integrations/events,
	// …/api/v1/integrations/alertmanager or Alertmanager's …/api/v2/alerts).
	URL string
	// Key is the integration key (not used by am-v2).
	Key string
	// Format is one of FormatEvents, FormatAlertmanager, FormatAMv2.
	Format string
	// Rate is the target alerts per second over all workers; 0 sends as
	// fast as the replies come back.
	Rate float64
	// Concurrency is the number of requests in flight at most.
	Concurrency int
	// Duration bounds the run.
	Duration time.Duration
	// Distinct is the number of distinct label sets: alert n carries label
	// set n mod Distinct, so repeats are deduplicated. 0 makes every alert
	// distinct.
	Distinct int
	// Critical sends critical alerts (they page at once); otherwise
	// warning.
	Critical bool
	// Batch is the number of alerts per request (alertmanager and am-v2;
	// events always sends one).
	Batch int
	// Count, when positive, ends the run after that many alerts.
	Count int64
	// Prefix starts every instance label and dedup key, so that separate
	// runs against one server do not deduplicate into each other.
	Prefix string
	// Timeout bounds one request; default 10s.
	Timeout time.Duration
}

// AlertReport is the outcome of an alert stream.
type AlertReport struct {
	Format      string
	Rate        float64
	Concurrency int
	Batch       int
	// Requests counts completed requests; Failed those without a 2xx reply.
	Requests, Failed int64
	// Sent counts alerts in completed requests, Accepted those in 2xx
	// replies.
	Sent, Accepted int64
	// FirstError describes the first failed request.
	FirstError string
	Elapsed    time.Duration
	// Latency holds the reply time quantiles of all completed requests.
	P50, P90, P99, Max time.Duration
	// Behind is how late the last request started against its schedule
	// (rate > 0 only): a large value means the target rate was not held.
	Behind time.Duration
	// CPU is the CPU time the generator itself used.
	CPU time.Duration
}

// String renders the report as one line of key=value pairs for scripts.
func (r AlertReport) String() string {
	sec := max(r.Elapsed.Seconds(), 1e-9)
	s := fmt.Sprintf("format=%s rate=%g concurrency=%d batch=%d requests=%d failed=%d sent=%d accepted=%d errors=%d elapsed=%.2fs sent_per_s=%.1f accepted_per_s=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f behind_ms=%.1f loadgen_cpu_cores=%.2f",
		r.Format, r.Rate, r.Concurrency, r.Batch, r.Requests, r.Failed, r.Sent, r.Accepted, r.Failed, r.Elapsed.Seconds(),
		float64(r.Sent)/sec, float64(r.Accepted)/sec, ms(r.P50), ms(r.P90), ms(r.P99), ms(r.Max), ms(r.Behind), r.CPU.Seconds()/sec)
	if r.FirstError != "" {
		s += fmt.Sprintf(" first_error=%q", r.FirstError)
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (o *AlertOptions) validate() error {
	if u, err := url.Parse(o.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &FlagError{"url", fmt.Sprintf("must be an http:// or https:// URL, got %q", o.URL)}
	}
	switch o.Format {
	case FormatEvents, FormatAlertmanager:
		if o.Key == "" {
			return &FlagError{"key", "is required for format " + o.Format}
		}
	case FormatAMv2:
	default:
		return &FlagError{"format", fmt.Sprintf("must be events, alertmanager or am-v2, got %q", o.Format)}
	}
	if o.Rate < 0 {
		return &FlagError{"rate", fmt.Sprintf("must not be negative, got %g", o.Rate)}
	}
	if o.Concurrency < 1 || o.Concurrency > 10000 {
		return &FlagError{"concurrency", fmt.Sprintf("must be between 1 and 10000, got %d", o.Concurrency)}
	}
	if o.Duration <= 0 {
		return &FlagError{"duration", fmt.Sprintf("must be positive, got %s", o.Duration)}
	}
	if o.Distinct < 0 {
		return &FlagError{"distinct", fmt.Sprintf("must not be negative, got %d", o.Distinct)}
	}
	if o.Batch == 0 {
		o.Batch = 1
	}
	if o.Batch < 1 || o.Batch > 1000 {
		return &FlagError{"batch", fmt.Sprintf("must be between 1 and 1000, got %d", o.Batch)}
	}
	if o.Format == FormatEvents && o.Batch != 1 {
		return &FlagError{"batch", "the events format sends one event per request"}
	}
	if o.Count < 0 {
		return &FlagError{"count", fmt.Sprintf("must not be negative, got %d", o.Count)}
	}
	if strings.ContainsAny(o.Prefix, "\"\\") {
		return &FlagError{"prefix", "must not contain quotes or backslashes"}
	}
	if o.Prefix == "" {
		o.Prefix = "lg"
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	return nil
}

// AlertBody appends the request body of alerts first … first+n-1 of the
// stream to dst, stamped with the send time now. Label set k of an alert
// n is n mod o.Distinct (n itself when Distinct is 0). Every format
// carries the same labels: alertname, instance (<prefix>-<k>), job,
// severity and group; the summary ends with SentMarker and now in unix
// nanoseconds. Exported so tests can feed it to the real parsers.
func AlertBody(dst []byte, o AlertOptions, first int64, n int, now time.Time) []byte {
	sev, pdSev := "warning", "warning"
	if o.Critical {
		sev, pdSev = "critical", "critical"
	}
	ns := now.UnixNano()
	ts := now.UTC().Format(time.RFC3339Nano)
	switch o.Format {
	case FormatEvents:
		k := labelSet(o, first)
		dst = append(dst, `{"routing_key":`...)
		dst = strconv.AppendQuote(dst, o.Key)
		dst = append(dst, `,"event_action":"trigger","dedup_key":"`...)
		dst = appendInstance(dst, o.Prefix, k)
		dst = append(dst, `","payload":{"summary":"loadgen alert `...)
		dst = appendInstance(dst, o.Prefix, k)
		dst = append(dst, " "+SentMarker...)
		dst = strconv.AppendInt(dst, ns, 10)
		dst = append(dst, `","source":"`...)
		dst = appendInstance(dst, o.Prefix, k)
		dst = append(dst, `","severity":"`...)
		dst = append(dst, pdSev...)
		dst = append(dst, `","group":"loadgen","class":"LoadgenAlert","timestamp":"`...)
		dst = append(dst, ts...)
		return append(dst, `"}}`...)
	case FormatAlertmanager:
		dst = append(dst, `{"version":"4","groupKey":"{}:{}","status":"firing","receiver":"loadgen","groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://loadgen.invalid","alerts":[`...)
	default:
		dst = append(dst, '[')
	}
	for i := range n {
		if i > 0 {
			dst = append(dst, ',')
		}
		k := labelSet(o, first+int64(i))
		dst = append(dst, `{`...)
		if o.Format == FormatAlertmanager {
			dst = append(dst, `"status":"firing",`...)
		}
		dst = append(dst, `"labels":{"alertname":"LoadgenAlert","instance":"`...)
		dst = appendInstance(dst, o.Prefix, k)
		dst = append(dst, `","job":"loadgen","group":"loadgen","severity":"`...)
		dst = append(dst, sev...)
		dst = append(dst, `"},"annotations":{"summary":"loadgen alert `...)
		dst = appendInstance(dst, o.Prefix, k)
		dst = append(dst, " "+SentMarker...)
		dst = strconv.AppendInt(dst, ns, 10)
		dst = append(dst, `"},"startsAt":"`...)
		dst = append(dst, ts...)
		dst = append(dst, `","generatorURL":"http://loadgen.invalid/"}`...)
	}
	if o.Format == FormatAlertmanager {
		return append(dst, "]}"...)
	}
	return append(dst, ']')
}

func labelSet(o AlertOptions, n int64) int64 {
	if o.Distinct > 0 {
		return n % int64(o.Distinct)
	}
	return n
}

func appendInstance(dst []byte, prefix string, k int64) []byte {
	dst = append(dst, prefix...)
	dst = append(dst, '-')
	return strconv.AppendInt(dst, k, 10)
}

// RunAlerts sends the alert stream o describes until o.Duration passes,
// o.Count alerts were sent, or ctx is cancelled, and measures the replies.
// Requests cut short by the end of the run are not counted.
func RunAlerts(ctx context.Context, o AlertOptions) (AlertReport, error) {
	if err := o.validate(); err != nil {
		return AlertReport{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	tr := &http.Transport{MaxIdleConns: o.Concurrency, MaxIdleConnsPerHost: o.Concurrency, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: o.Timeout}

	var (
		next                             atomic.Int64 // next alert number to send
		requests, failed, sent, accepted atomic.Int64
		behind                           atomic.Int64
		errOnce                          sync.Once
		firstErr                         string
		mu                               sync.Mutex
		lat                              []time.Duration
	)
	cpu0 := processCPU()
	start := time.Now()
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Go(func() {
			var body []byte
			mine := make([]time.Duration, 0, 1024)
			defer func() {
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
			for rctx.Err() == nil {
				first := next.Add(int64(o.Batch)) - int64(o.Batch)
				n := o.Batch
				if o.Count > 0 {
					if first >= o.Count {
						return
					}
					n = int(min(int64(n), o.Count-first))
				}
				if o.Rate > 0 {
					// Open-loop pacing: alert `first` is due at
					// start + first/rate, whatever the replies do.
					due := start.Add(time.Duration(float64(first) / o.Rate * float64(time.Second)))
					if d := time.Until(due); d > 0 {
						t := time.NewTimer(d)
						select {
						case <-t.C:
						case <-rctx.Done():
							t.Stop()
							return
						}
					} else {
						behind.Store(int64(-d))
					}
				}
				t0 := time.Now()
				body = AlertBody(body[:0], o, first, n, t0)
				ok, errText := postAlerts(rctx, client, o, body)
				d := time.Since(t0)
				if rctx.Err() != nil && !ok {
					return // cut short by the end of the run
				}
				requests.Add(1)
				sent.Add(int64(n))
				mine = append(mine, d)
				if ok {
					accepted.Add(int64(n))
				} else {
					failed.Add(1)
					errOnce.Do(func() { firstErr = errText })
				}
			}
		})
	}
	wg.Wait()
	r := AlertReport{Format: o.Format, Rate: o.Rate, Concurrency: o.Concurrency, Batch: o.Batch,
		Requests: requests.Load(), Failed: failed.Load(), Sent: sent.Load(), Accepted: accepted.Load(),
		FirstError: firstErr, Elapsed: time.Since(start), Behind: time.Duration(behind.Load()), CPU: processCPU() - cpu0}
	r.P50, r.P90, r.P99, r.Max = quantiles(lat)
	if ctx.Err() != nil {
		return r, fmt.Errorf("loadgen alerts: %w", ctx.Err())
	}
	return r, nil
}

func postAlerts(ctx context.Context, client *http.Client, o AlertOptions, body []byte) (bool, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.URL, bytes.NewReader(body))
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	if o.Format == FormatAlertmanager {
		req.Header.Set("Authorization", "Bearer "+o.Key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return false, fmt.Sprintf("status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	// Drain so the connection is reused.
	_, _ = io.Copy(io.Discard, resp.Body)
	return true, ""
}

// quantiles returns p50, p90, p99 and the maximum of ds (sorted in place).
func quantiles(ds []time.Duration) (p50, p90, p99, mx time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	q := func(p float64) time.Duration {
		i := int(p*float64(len(ds))+0.999999) - 1 // nearest rank
		return ds[min(max(i, 0), len(ds)-1)]
	}
	return q(0.50), q(0.90), q(0.99), ds[len(ds)-1]
}

// Receiver is a webhook endpoint that measures, for every notification
// whose body carries SentMarker, the delay from that send time to the
// notification's arrival.
type Receiver struct {
	now func() time.Time
	mu  sync.Mutex
	// delays of measured notifications since the last reset.
	delays []time.Duration
	// total counts every POST, unmeasured those without a send time.
	total, unmeasured int64
}

// NewReceiver returns a receiver; now is the clock (time.Now when nil).
func NewReceiver(now func() time.Time) *Receiver {
	if now == nil {
		now = time.Now
	}
	return &Receiver{now: now}
}

// ReceiverStats summarises the notifications received since the last reset.
type ReceiverStats struct {
	Deliveries int64   `json:"deliveries"`
	Measured   int     `json:"measured"`
	Unmeasured int64   `json:"unmeasured"`
	P50ms      float64 `json:"p50_ms"`
	P90ms      float64 `json:"p90_ms"`
	P99ms      float64 `json:"p99_ms"`
	MaxMs      float64 `json:"max_ms"`
}

// String renders the stats as one line of key=value pairs.
func (s ReceiverStats) String() string {
	return fmt.Sprintf("deliveries=%d measured=%d unmeasured=%d p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f",
		s.Deliveries, s.Measured, s.Unmeasured, s.P50ms, s.P90ms, s.P99ms, s.MaxMs)
}

// Stats returns the figures since the last reset.
func (rc *Receiver) Stats() ReceiverStats {
	rc.mu.Lock()
	ds := slices.Clone(rc.delays)
	st := ReceiverStats{Deliveries: rc.total, Measured: len(ds), Unmeasured: rc.unmeasured}
	rc.mu.Unlock()
	p50, p90, p99, mx := quantiles(ds)
	st.P50ms, st.P90ms, st.P99ms, st.MaxMs = ms(p50), ms(p90), ms(p99), ms(mx)
	return st
}

// Reset forgets everything received so far (after a warm-up).
func (rc *Receiver) Reset() {
	rc.mu.Lock()
	rc.delays, rc.total, rc.unmeasured = nil, 0, 0
	rc.mu.Unlock()
}

// ServeHTTP takes notifications on POST (any path), GET /-/stats returns
// ReceiverStats as JSON and POST /-/reset clears them.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/-/stats":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rc.Stats())
		return
	case r.Method == http.MethodPost && r.URL.Path == "/-/reset":
		rc.Reset()
		w.WriteHeader(http.StatusNoContent)
		return
	case r.Method != http.MethodPost:
		http.Error(w, "POST a notification", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	at := rc.now()
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	sent, ok := sentTime(body)
	rc.mu.Lock()
	rc.total++
	if ok {
		rc.delays = append(rc.delays, at.Sub(sent))
	} else {
		rc.unmeasured++
	}
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// sentTime finds SentMarker<digits> in a notification body.
func sentTime(body []byte) (time.Time, bool) {
	i := bytes.Index(body, []byte(SentMarker))
	if i < 0 {
		return time.Time{}, false
	}
	rest := body[i+len(SentMarker):]
	j := 0
	for j < len(rest) && j < 19 && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	ns, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	if err != nil || ns <= 0 {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// alertsCmd is `nocsoc loadgen alerts`.
func alertsCmd(ctx context.Context, args []string, stdout io.Writer) error {
	var o AlertOptions
	fs := newFlags("alerts")
	fs.StringVar(&o.URL, "url", "", "intake URL (…/api/v1/integrations/events|alertmanager, or Alertmanager's …/api/v2/alerts)")
	fs.StringVar(&o.Key, "key", "", "integration key (events: routing_key; alertmanager: bearer token)")
	fs.StringVar(&o.Format, "format", FormatEvents, "events, alertmanager or am-v2")
	fs.Float64Var(&o.Rate, "rate", 0, "alerts per second (0: as fast as possible)")
	fs.IntVar(&o.Concurrency, "concurrency", 16, "requests in flight at most")
	fs.DurationVar(&o.Duration, "duration", 30*time.Second, "how long to run")
	fs.IntVar(&o.Distinct, "distinct", 1000, "distinct label sets (0: every alert distinct)")
	fs.BoolVar(&o.Critical, "critical", false, "send critical alerts (they page at once)")
	fs.IntVar(&o.Batch, "batch", 1, "alerts per request (alertmanager, am-v2)")
	fs.Int64Var(&o.Count, "count", 0, "stop after this many alerts (0: no limit)")
	fs.StringVar(&o.Prefix, "prefix", "lg", "prefix of instance labels and dedup keys")
	if err := parse(fs, args); err != nil {
		return err
	}
	r, err := RunAlerts(ctx, o)
	if err != nil {
		return usageIfFlag("alerts", err)
	}
	_, err = fmt.Fprintln(stdout, r.String())
	return err
}

// receiverCmd is `nocsoc loadgen receiver`.
func receiverCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("receiver")
	listen := fs.String("listen", "127.0.0.1:9901", "listen address")
	every := fs.Duration("interval", 0, "also print the figures at this interval (0: only on exit)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *every < 0 {
		return UsageError{"loadgen receiver: --interval: must not be negative"}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("loadgen receiver: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("component", "loadgen-receiver")
	rc := NewReceiver(nil)
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("receiving webhooks", "addr", ln.Addr().String())
	var tick <-chan time.Time
	if *every > 0 {
		t := time.NewTicker(*every)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-tick:
			fmt.Fprintln(stdout, rc.Stats().String())
		case err := <-errc:
			return fmt.Errorf("loadgen receiver: %w", err)
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Warn("shutdown", "err", err)
			}
			_, err := fmt.Fprintln(stdout, rc.Stats().String())
			return err
		}
	}
}
