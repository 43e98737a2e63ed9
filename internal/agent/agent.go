// Package agent is the nocsoc endpoint agent: it enrolls with a server
// once, then reports heartbeats, metrics and inventory over outbound HTTPS
// only, buffering to disk while the server is unreachable. It imports no
// server packages (no SQLite, no DuckDB), so its binary stays small and
// static.
package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/host"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

// Version is the agent's version, sent at enrollment.
var Version = "0.1.0-dev"

// ErrRefused means the server refused the agent's credential (revoked or
// unknown) or its enrollment token: retrying cannot help.
var ErrRefused = errors.New("refused by server")

// Options configures the agent.
type Options struct {
	// Server is the base URL, e.g. https://noc.example.com.
	Server string
	// EnrollToken is needed only until the agent has a credential.
	EnrollToken string
	// StateDir holds the credential (0600), the sequence number and the
	// disk buffer.
	StateDir string
	// Interval between heartbeats and metric samples; default 30s.
	Interval time.Duration
	// InventoryInterval between inventory collections; default 15m. An
	// inventory is sent only when it changed (and once after start).
	InventoryInterval time.Duration
	// PinSHA256 is the hex SHA-256 of the server's leaf certificate (DER).
	// When set, it replaces CA verification, so a self-signed server
	// certificate works and nothing else does.
	PinSHA256 string
	// CAFile is a PEM bundle trusted instead of the system roots.
	CAFile string
	// BufferBatches and BufferBytes bound the disk buffer; defaults 10000
	// batches and 256 MiB.
	BufferBatches int
	BufferBytes   int64
	// FIMPaths are the files and glob patterns watched by file integrity
	// monitoring; nil means DefaultFIMPaths. FIMInterval is how often they
	// are hashed: 0 means every Interval, negative turns monitoring off
	// (backup_ops.go, fim.go).
	FIMPaths    []string
	FIMInterval time.Duration
	// UpdatesInterval between pending-updates collections (apt/dnf);
	// default 1h, negative disables them (jobs.go, updates.go).
	UpdatesInterval time.Duration
	// JobWait is how long each job poll may wait on the server; default
	// agentproto.DefaultJobWait.
	JobWait time.Duration
	// AllowShell lets "shell" jobs run (the server must allow them for
	// the endpoint too).
	AllowShell bool
	// ActiveResponse lets the active-response actions (firewall.*, user.*,
	// process.kill) run; without it the agent refuses them, so a host's
	// firewall and accounts change only where an operator opted in.
	ActiveResponse bool
	// Labels describe the endpoint (role=web, env=prod) for label-scoped
	// active response; sent at enrollment and with every heartbeat.
	Labels map[string]string
	// Root prefixes the files read for inventory (tests).
	Root string
	// Log shipping (logship.go): LogFiles are glob patterns of files to
	// tail; Journal ships journald entries through JournalBin (default
	// journalctl); LogsFromStart reads the files found at the very first
	// start from their beginning; LogPoll is how often files are read
	// (default 1s).
	LogFiles      []string
	Journal       bool
	JournalBin    string
	LogsFromStart bool
	LogPoll       time.Duration
	Logger        *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (o *Options) normalize() error {
	if o.Server == "" {
		return errors.New("server: is required")
	}
	u, err := url.Parse(o.Server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("server: %q is not an http(s) URL", o.Server)
	}
	o.Server = strings.TrimSuffix(o.Server, "/")
	if err := agentproto.ValidateLabels(o.Labels); err != nil {
		return fmt.Errorf("label: %w", err)
	}
	if o.StateDir == "" {
		return errors.New("state: is required")
	}
	if o.Interval == 0 {
		o.Interval = 30 * time.Second
	}
	if o.Interval < 10*time.Millisecond {
		return fmt.Errorf("interval: %s is too short (minimum 10ms)", o.Interval)
	}
	if o.InventoryInterval == 0 {
		o.InventoryInterval = 15 * time.Minute
	}
	if o.InventoryInterval < 0 {
		return fmt.Errorf("inventory-interval: must be positive (got %s)", o.InventoryInterval)
	}
	if o.PinSHA256 != "" {
		p := strings.ToLower(strings.ReplaceAll(o.PinSHA256, ":", ""))
		if b, err := hex.DecodeString(p); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("pin-sha256: %q is not a hex SHA-256 (64 hex digits)", o.PinSHA256)
		}
		o.PinSHA256 = p
	}
	if o.BufferBatches == 0 {
		o.BufferBatches = 10000
	}
	if o.BufferBytes == 0 {
		o.BufferBytes = 256 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.UpdatesInterval == 0 {
		o.UpdatesInterval = time.Hour
	}
	if o.JobWait <= 0 {
		o.JobWait = agentproto.DefaultJobWait
	}
	o.JobWait = min(o.JobWait, agentproto.MaxJobWait)
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// credential is what enrollment leaves in <state>/agent.json (mode 0600).
type credential struct {
	AgentID    string `json:"agent_id"`
	Credential string `json:"credential"`
	Server     string `json:"server"`
}

// Agent is a running agent.
type Agent struct {
	o      Options
	log    *slog.Logger
	client *http.Client
	cred   credential
	buf    *Buffer
	col    *Collector
	seq    uint64
	// seqMu guards seq: the log shipper allocates sequence numbers too.
	seqMu sync.Mutex
	// invHash is the hash of the last inventory queued; invAt when it was
	// collected.
	invHash string
	invAt   time.Time
	reboots float64
	// jr runs jobs (jobs.go); upd remembers the last updates report
	// (updates.go).
	jr  *jobRunner
	upd updatesState
	// ops holds backup spool, file integrity and mail queue state
	// (backup_ops.go).
	ops opsState
	// facts collects compliance facts in the background (facts.go).
	facts factsState
}

// Run enrolls if needed and reports until ctx ends. It returns nil when ctx
// ends and an error wrapping ErrRefused when the server refuses the agent.
func Run(ctx context.Context, o Options) error {
	a, err := New(o)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// New validates o and prepares the agent (no network yet).
func New(o Options) (*Agent, error) {
	if err := o.normalize(); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("agent: state dir: %w", err)
	}
	client, err := httpClient(o)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	buf, err := OpenBuffer(filepath.Join(o.StateDir, "buffer"), o.BufferBatches, o.BufferBytes)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	a := &Agent{o: o, log: o.Logger.With("component", "agent"), client: client, buf: buf, col: &Collector{Root: o.Root, Log: o.Logger}}
	if a.jr, err = newJobRunner(a); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if raw, err := os.ReadFile(a.statePath("seq")); err == nil {
		a.seq, _ = strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64)
	}
	a.seq = max(a.seq, buf.LastSeq())
	if raw, err := os.ReadFile(a.statePath("agent.json")); err == nil {
		if err := json.Unmarshal(raw, &a.cred); err != nil {
			return nil, fmt.Errorf("agent: read credential %s: %w", a.statePath("agent.json"), err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("agent: read credential: %w", err)
	}
	return a, nil
}

func (a *Agent) statePath(name string) string { return filepath.Join(a.o.StateDir, name) }

// httpClient builds the client; with a pin, the leaf certificate's hash
// is the whole verification.
func httpClient(o Options) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // outbound to the server only, never through an environment proxy
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca-file: %s holds no PEM certificate", o.CAFile)
		}
		tc.RootCAs = pool
	}
	if o.PinSHA256 != "" {
		want := o.PinSHA256
		tc.InsecureSkipVerify = true // replaced by the pin check below
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server sent no certificate")
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if got := hex.EncodeToString(sum[:]); got != want {
				return fmt.Errorf("server certificate SHA-256 %s does not match the pinned %s", got, want)
			}
			return nil
		}
	}
	tr.TLSClientConfig = tc
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// Run enrolls if needed and reports until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	if a.cred.Credential == "" {
		if err := a.enroll(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	a.log.Info("agent running", "agent_id", a.cred.AgentID, "server", a.o.Server, "interval", a.o.Interval, "buffered", a.buf.Len())
	a.initReboots(ctx)
	stopLogs, err := a.startLogs(ctx)
	if err != nil {
		return err
	}
	defer stopLogs()
	// Prime the CPU and network counters so the first sample has rates.
	a.col.Metrics(ctx, a.o.Now())
	// Jobs arrive by long poll, apart from the reporting cycle.
	pollCtx, stopPoll := context.WithCancel(ctx)
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		a.jr.loop(pollCtx)
	}()
	defer func() {
		stopPoll()
		<-polled
	}()
	tick := time.NewTicker(a.o.Interval)
	defer tick.Stop()
	for {
		if err := a.cycle(ctx); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-a.jr.kick: // a job asked for a fresh inventory
		}
	}
}

// enroll exchanges the token for a credential, retrying while the server
// is unreachable.
func (a *Agent) enroll(ctx context.Context) error {
	if a.o.EnrollToken == "" {
		return fmt.Errorf("agent: not enrolled yet: --enroll-token is required")
	}
	hostname, _ := os.Hostname()
	req := agentproto.EnrollRequest{Token: a.o.EnrollToken, Hostname: hostname, OS: runtime.GOOS, Arch: runtime.GOARCH, AgentVersion: Version,
		Labels: a.o.Labels}
	if hi, err := host.InfoWithContext(ctx); err == nil {
		req.Platform = strings.TrimSpace(hi.Platform + " " + hi.PlatformVersion)
		req.Kernel = hi.KernelVersion
	}
	backoff := time.Second
	for {
		var resp agentproto.EnrollResponse
		err := a.post(ctx, agentproto.PathEnroll, "", req, &resp)
		if err == nil {
			a.cred = credential{AgentID: resp.AgentID, Credential: resp.Credential, Server: a.o.Server}
			raw, _ := json.MarshalIndent(a.cred, "", "  ")
			if err := writeFileAtomic(a.statePath("agent.json"), raw, 0o600); err != nil {
				return fmt.Errorf("agent: save credential: %w", err)
			}
			a.log.Info("enrolled", "agent_id", resp.AgentID)
			return nil
		}
		if errors.Is(err, ErrRefused) {
			return fmt.Errorf("agent: enroll: %w", err)
		}
		a.log.Warn("enroll failed; retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, a.o.Interval, time.Minute)
		backoff = max(backoff, 10*time.Millisecond)
	}
}

// initReboots compares the boot time with the one remembered in the
// state directory: a change is a reboot.
func (a *Agent) initReboots(ctx context.Context) {
	bt, err := host.BootTimeWithContext(ctx)
	if err != nil {
		return
	}
	var lastBoot uint64
	if raw, err := os.ReadFile(a.statePath("boot")); err == nil {
		f := strings.Fields(string(raw))
		if len(f) == 2 {
			lastBoot, _ = strconv.ParseUint(f[0], 10, 64)
			a.reboots, _ = strconv.ParseFloat(f[1], 64)
		}
	}
	// Boot time is derived from uptime and wobbles by a second.
	if lastBoot != 0 && (bt > lastBoot+2 || bt+2 < lastBoot) {
		a.reboots++
	}
	_ = writeFileAtomic(a.statePath("boot"), []byte(fmt.Sprintf("%d %g\n", bt, a.reboots)), 0o600)
}

// cycle is one interval's work: collect into a batch on disk, send a
// heartbeat, then replay the buffer oldest first.
func (a *Agent) cycle(ctx context.Context) error {
	now := a.o.Now().UTC()
	b := agentproto.Batch{AgentID: a.cred.AgentID, SentAt: now}
	b.BatchID = newUUID()
	b.Metrics = a.col.Metrics(ctx, now)
	b.Metrics = append(b.Metrics, agentproto.Sample{Time: now, Name: "host.reboots_total", Value: a.reboots},
		agentproto.Sample{Time: now, Name: "agent.buffer_dropped_total", Value: float64(a.buf.Dropped())})
	force := a.jr.collect.Swap(false)
	b.Updates = a.collectUpdates(ctx, now, force)
	if force || a.invAt.IsZero() || now.Sub(a.invAt) >= a.o.InventoryInterval {
		inv, err := a.col.Inventory(ctx, now)
		if err != nil {
			a.log.Warn("inventory incomplete", "err", err)
		}
		a.invAt = now
		if h := inventoryHash(inv); h != a.invHash {
			a.invHash = h
			b.Inventory = &inv
		}
		// Compliance facts are collected at every inventory round, in the
		// background: some commands take minutes (facts.go).
		a.startFacts(ctx, now)
	}
	b.Facts = a.takeFacts()
	// Backup runs, file integrity, mail queue (backup_ops.go).
	commitOps := a.collectOps(ctx, now, &b)
	a.seqMu.Lock()
	b.Seq = a.seq + 1
	if err := a.buf.Put(b); err != nil {
		a.log.Error("buffer batch", "err", err)
	} else {
		commitOps()
		a.seq = b.Seq
		if err := writeFileAtomic(a.statePath("seq"), []byte(strconv.FormatUint(a.seq, 10)), 0o600); err != nil {
			a.log.Error("save seq", "err", err)
		}
	}
	a.seqMu.Unlock()
	hb := agentproto.Heartbeat{AgentID: a.cred.AgentID, SentAt: now, IntervalMS: a.o.Interval.Milliseconds(),
		Buffered: a.buf.Len(), Dropped: a.buf.Dropped(), Labels: a.o.Labels}
	if hb.Labels == nil {
		hb.Labels = map[string]string{} // no --label: clear any earlier ones
	}
	hb.Hostname, _ = os.Hostname()
	if err := a.post(ctx, agentproto.PathHeartbeat, a.cred.Credential, hb, nil); err != nil {
		if errors.Is(err, ErrRefused) {
			return fmt.Errorf("agent: heartbeat: %w", err)
		}
		if ctx.Err() == nil {
			a.log.Warn("server unreachable; buffering", "err", err, "buffered", a.buf.Len())
		}
		return nil
	}
	if err := a.replay(ctx); err != nil {
		return err
	}
	// Job results kept through an outage go out as soon as the server
	// answers, not at the job poll's next backoff step.
	a.jr.sendResults(ctx)
	return nil
}

// replay sends buffered batches oldest first until the buffer is empty or
// the server stops answering.
func (a *Agent) replay(ctx context.Context) error {
	for ctx.Err() == nil {
		b, ok, err := a.buf.Oldest()
		if err != nil {
			// An unreadable file would block the queue forever.
			a.log.Error("drop unreadable buffered batch", "err", err)
			if err := a.buf.Remove(a.bufOldestSeq()); err != nil {
				return fmt.Errorf("agent: %w", err)
			}
			continue
		}
		if !ok {
			return nil
		}
		var resp agentproto.BatchResponse
		err = a.post(ctx, agentproto.PathBatches, a.cred.Credential, b, &resp)
		var he *httpError
		switch {
		case err == nil:
		case errors.Is(err, ErrRefused):
			return fmt.Errorf("agent: send batch: %w", err)
		case errors.As(err, &he) && he.status >= 400 && he.status < 500 && he.status != http.StatusTooManyRequests:
			// The server will never accept this batch; keeping it would
			// block every later one.
			a.log.Error("server rejected batch; dropping it", "seq", b.Seq, "err", err)
		default:
			if ctx.Err() == nil {
				a.log.Warn("send batch failed; will replay", "seq", b.Seq, "err", err)
			}
			return nil
		}
		if err := a.buf.Remove(b.Seq); err != nil {
			return fmt.Errorf("agent: %w", err)
		}
	}
	return nil
}

func (a *Agent) bufOldestSeq() uint64 {
	a.buf.mu.Lock()
	defer a.buf.mu.Unlock()
	if len(a.buf.files) == 0 {
		return 0
	}
	return a.buf.files[0].seq
}

// httpError is a non-2xx answer.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return fmt.Sprintf("server answered %d: %s", e.status, e.msg) }

// post sends v as JSON and decodes a 2xx answer into out. 401 and 403
// wrap ErrRefused.
func (a *Agent) post(ctx context.Context, path, bearer string, v, out any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.o.Server+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "nocsoc-agent/"+Version)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e agentproto.Error
		_ = json.Unmarshal(raw, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(raw))
		}
		he := &httpError{status: resp.StatusCode, msg: e.Error}
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			return fmt.Errorf("%w: %w", ErrRefused, he)
		}
		return he
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
	}
	return nil
}

// inventoryHash identifies an inventory's content, its collection time
// and boot time aside.
func inventoryHash(inv agentproto.Inventory) string {
	inv.CollectedAt = time.Time{}
	raw, _ := json.Marshal(inv)
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Buffered is the number of batches waiting on disk.
func (a *Agent) Buffered() int { return a.buf.Len() }

// AgentID is the enrolled identity ("" before enrollment).
func (a *Agent) AgentID() string { return a.cred.AgentID }
