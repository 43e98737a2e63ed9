// Package ingest owns the log inputs of the SOC pipeline: syslog over UDP,
// TCP and TLS, tailed local files and the JSON events accepted over HTTP.
// It turns what it receives into event.Event values and hands them, in
// batches, to a Sink that makes them durable; a slow sink slows the readers
// down instead of losing data.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/event"
)

// Sink receives batches of events. Write returns only once the batch is
// durable (or with an error). It is called from many input goroutines at
// once and must be safe for concurrent use. A Sink that blocks applies
// back-pressure: TCP readers stop reading, files stop advancing, UDP counts
// drops.
type Sink interface {
	Write(ctx context.Context, evs []event.Event) error
}

// SinkBatch is a batch a sink prepares event by event as an input reads
// them (Options.Batches): Add is given each event as soon as it is built
// (and must not keep the pointer: the input's slice may move), Write then
// stores the events added, like Sink.Write. Used by one goroutine.
type SinkBatch interface {
	Add(e *event.Event)
	Write(ctx context.Context, evs []event.Event) error
}

// Input kinds, as recorded in event.Event.Input.
const (
	InputSyslogUDP = "syslog-udp"
	InputSyslogTCP = "syslog-tcp"
	InputSyslogTLS = "syslog-tls"
	InputFile      = "file"
	InputHTTP      = "http"
)

// Defaults applied by Start when a value is left zero.
const (
	DefaultMaxLine          = 64 * 1024
	DefaultBatchSize        = 1000
	DefaultFlushEvery       = 200 * time.Millisecond
	DefaultPoll             = time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultMaxConnections   = 1000
	DefaultUDPQueue         = 10000
	// MaxMaxLine bounds max_line so that one connection cannot pin an
	// arbitrary amount of memory.
	MaxMaxLine = 16 << 20
)

// Config is the `inputs:` section of the configuration file.
type Config struct {
	Syslog []SyslogInput `yaml:"syslog" json:"syslog,omitempty"`
	Files  []FileInput   `yaml:"files" json:"files,omitempty"`
}

// SyslogInput is one syslog listener.
type SyslogInput struct {
	Name string `yaml:"name" json:"name"`
	// Protocol is udp, tcp or tls.
	Protocol string `yaml:"protocol" json:"protocol"`
	// Listen is host:port; empty means 127.0.0.1:5514 (udp, tcp) or
	// 127.0.0.1:6514 (tls), so that nothing is exposed unless asked for.
	Listen  string `yaml:"listen" json:"listen,omitempty"`
	TLSCert string `yaml:"tls_cert" json:"tls_cert,omitempty"`
	TLSKey  string `yaml:"tls_key" json:"tls_key,omitempty"`
	// MaxLine is the longest message kept; longer ones are truncated and
	// flagged. Default 64 KiB.
	MaxLine int `yaml:"max_line" json:"max_line,omitempty"`
	// HandshakeTimeout bounds a TLS handshake (default 10s).
	HandshakeTimeout check.Duration `yaml:"handshake_timeout" json:"handshake_timeout,omitempty"`
	// MaxConnections bounds concurrent TCP/TLS connections (default 1000).
	MaxConnections int `yaml:"max_connections" json:"max_connections,omitempty"`
	// QueueSize is the UDP queue between the socket and the parser
	// (default 10000 datagrams); when it is full, datagrams are dropped
	// and counted.
	QueueSize int `yaml:"queue_size" json:"queue_size,omitempty"`
}

// FileInput tails local files.
type FileInput struct {
	Name string `yaml:"name" json:"name"`
	// Paths are glob patterns (filepath.Match syntax).
	Paths []string `yaml:"paths" json:"paths"`
	// Format is syslog, nginx-access, apache-access, raw or json.
	Format string `yaml:"format" json:"format,omitempty"`
	// Poll is how often files are checked for new data (default 1s).
	Poll    check.Duration `yaml:"poll" json:"poll,omitempty"`
	MaxLine int            `yaml:"max_line" json:"max_line,omitempty"`
}

// File formats.
var fileFormats = []string{"syslog", "nginx-access", "apache-access", "raw", "json"}

var inputNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Validate checks the configuration without changing it. Errors are
// *check.FieldError naming the field, e.g. "syslog[1].listen".
func (c Config) Validate() error {
	seen := map[string]string{}
	name := func(field, n string) error {
		if n == "" {
			return &check.FieldError{Field: field, Reason: "is required"}
		}
		if !inputNameRE.MatchString(n) {
			return &check.FieldError{Field: field, Reason: fmt.Sprintf("%q must be 1-64 letters, digits, '.', '_' or '-'", n)}
		}
		if prev, ok := seen[n]; ok {
			return &check.FieldError{Field: field, Reason: fmt.Sprintf("%q is already used by %s", n, prev)}
		}
		seen[n] = field
		return nil
	}
	maxLine := func(field string, v int) error {
		if v < 0 || v > MaxMaxLine {
			return &check.FieldError{Field: field, Reason: fmt.Sprintf("%d must be between 1 and %d (0 means %d)", v, MaxMaxLine, DefaultMaxLine)}
		}
		return nil
	}
	for i, s := range c.Syslog {
		p := fmt.Sprintf("syslog[%d].", i)
		if err := name(p+"name", s.Name); err != nil {
			return err
		}
		switch s.Protocol {
		case "udp", "tcp", "tls":
		case "":
			return &check.FieldError{Field: p + "protocol", Reason: "is required (udp, tcp or tls)"}
		default:
			return &check.FieldError{Field: p + "protocol", Reason: fmt.Sprintf("%q must be udp, tcp or tls", s.Protocol)}
		}
		if s.Listen != "" {
			if err := validListen(s.Listen); err != nil {
				return &check.FieldError{Field: p + "listen", Reason: err.Error()}
			}
		}
		if s.Protocol == "tls" {
			if s.TLSCert == "" {
				return &check.FieldError{Field: p + "tls_cert", Reason: "is required for protocol tls"}
			}
			if s.TLSKey == "" {
				return &check.FieldError{Field: p + "tls_key", Reason: "is required for protocol tls"}
			}
		} else if s.TLSCert != "" || s.TLSKey != "" {
			f := "tls_cert"
			if s.TLSCert == "" {
				f = "tls_key"
			}
			return &check.FieldError{Field: p + f, Reason: "is only valid with protocol tls"}
		}
		if err := maxLine(p+"max_line", s.MaxLine); err != nil {
			return err
		}
		if s.HandshakeTimeout < 0 {
			return &check.FieldError{Field: p + "handshake_timeout", Reason: "must not be negative"}
		}
		if s.MaxConnections < 0 {
			return &check.FieldError{Field: p + "max_connections", Reason: "must not be negative"}
		}
		if s.QueueSize < 0 {
			return &check.FieldError{Field: p + "queue_size", Reason: "must not be negative"}
		}
	}
	for i, f := range c.Files {
		p := fmt.Sprintf("files[%d].", i)
		if err := name(p+"name", f.Name); err != nil {
			return err
		}
		if len(f.Paths) == 0 {
			return &check.FieldError{Field: p + "paths", Reason: "needs at least one glob"}
		}
		for j, g := range f.Paths {
			if g == "" {
				return &check.FieldError{Field: fmt.Sprintf("%spaths[%d]", p, j), Reason: "is empty"}
			}
			if _, err := filepath.Match(g, ""); err != nil {
				return &check.FieldError{Field: fmt.Sprintf("%spaths[%d]", p, j), Reason: fmt.Sprintf("%q is not a valid glob: %v", g, err)}
			}
		}
		ok := f.Format == ""
		for _, ff := range fileFormats {
			ok = ok || f.Format == ff
		}
		if !ok {
			return &check.FieldError{Field: p + "format", Reason: fmt.Sprintf("%q must be one of syslog, nginx-access, apache-access, raw, json", f.Format)}
		}
		if f.Poll < 0 {
			return &check.FieldError{Field: p + "poll", Reason: "must not be negative"}
		}
		if err := maxLine(p+"max_line", f.MaxLine); err != nil {
			return err
		}
	}
	return nil
}

func validListen(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %v", s, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port must be a number from 0 to 65535", s)
	}
	return nil
}

// Options configures a Manager.
type Options struct {
	// Sink receives every batch; required.
	Sink Sink
	// Batches, when set, starts a SinkBatch of about n events; the syslog
	// and file inputs then deliver through one, adding each event as soon
	// as it is parsed and normalized.
	Batches func(n int) SinkBatch
	// Normalize, when set, is applied to every event before batching
	// (the lead passes normalize.Normalize).
	Normalize func(*event.Event)
	// StateDir holds file offsets; required when file inputs are used.
	StateDir string
	Logger   *slog.Logger
	// Now stamps Received and places year-less RFC 3164 timestamps.
	Now func() time.Time
	// Location is the zone of RFC 3164 timestamps, which carry none
	// (default time.Local).
	Location   *time.Location
	BatchSize  int
	FlushEvery time.Duration
}

// InputStats counts what one input has seen since Start.
type InputStats struct {
	// Received is the number of events produced (stored or being stored).
	Received    uint64 `json:"received"`
	Bytes       uint64 `json:"bytes"`
	ParseErrors uint64 `json:"parse_errors"`
	Truncated   uint64 `json:"truncated"`
	UDPDrops    uint64 `json:"udp_drops"`
	// Connections is the number of currently open TCP/TLS connections.
	Connections int64 `json:"connections"`
	// Errors counts framing errors, failed handshakes, refused
	// connections and failed sink writes.
	Errors uint64 `json:"errors"`
}

// counters is the live, atomically updated form of InputStats.
type counters struct {
	received, bytes, parseErrors, truncated, udpDrops, errors atomic.Uint64
	connections                                               atomic.Int64
}

func (c *counters) snapshot() InputStats {
	return InputStats{
		Received: c.received.Load(), Bytes: c.bytes.Load(), ParseErrors: c.parseErrors.Load(),
		Truncated: c.truncated.Load(), UDPDrops: c.udpDrops.Load(), Connections: c.connections.Load(),
		Errors: c.errors.Load(),
	}
}

// Manager runs the configured inputs.
type Manager struct {
	o   Options
	log *slog.Logger

	mu      sync.Mutex
	started bool
	addrs   map[string]net.Addr
	stats   map[string]*counters
	order   []string
	closers []func() // stop accepting/reading, in start order
	stop    chan struct{}
	wg      sync.WaitGroup
}

// NewManager returns a Manager; call Start to run inputs.
func NewManager(o Options) *Manager {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = DefaultFlushEvery
	}
	return &Manager{
		o:     o,
		log:   o.Logger.With("component", "ingest"),
		addrs: map[string]net.Addr{},
		stats: map[string]*counters{},
		stop:  make(chan struct{}),
	}
}

// Start validates c, binds every listener and starts the readers. When one
// input cannot start, the ones already started are stopped and the error
// names the input.
func (m *Manager) Start(ctx context.Context, c Config) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	if m.o.Sink == nil {
		return errors.New("ingest: Options.Sink is required")
	}
	if len(c.Files) > 0 && m.o.StateDir == "" {
		return errors.New("ingest: Options.StateDir is required for file inputs")
	}
	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return errors.New("ingest: already started")
	}
	m.started = true
	m.mu.Unlock()

	for _, s := range c.Syslog {
		var err error
		switch s.Protocol {
		case "udp":
			err = m.startUDP(ctx, s)
		default:
			err = m.startTCP(ctx, s)
		}
		if err != nil {
			_ = m.Stop()
			return fmt.Errorf("ingest: input %q: %w", s.Name, err)
		}
	}
	for _, f := range c.Files {
		if err := m.startFiles(ctx, f); err != nil {
			_ = m.Stop()
			return fmt.Errorf("ingest: input %q: %w", f.Name, err)
		}
	}
	return nil
}

func (m *Manager) register(name string, addr net.Addr, closer func()) *counters {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := &counters{}
	m.stats[name] = c
	m.order = append(m.order, name)
	if addr != nil {
		m.addrs[name] = addr
	}
	if closer != nil {
		m.closers = append(m.closers, closer)
	}
	return c
}

// Addrs returns the bound address of each network input, by input name.
func (m *Manager) Addrs() map[string]net.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]net.Addr, len(m.addrs))
	for k, v := range m.addrs {
		out[k] = v
	}
	return out
}

// Stats returns a snapshot of each input's counters, by input name.
func (m *Manager) Stats() map[string]InputStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]InputStats, len(m.stats))
	for k, c := range m.stats {
		out[k] = c.snapshot()
	}
	return out
}

// Stop stops accepting and reading, flushes what was already read to the
// sink (file offsets are saved after that) and waits for every reader.
// It is safe to call more than once.
func (m *Manager) Stop() error {
	m.mu.Lock()
	select {
	case <-m.stop:
		m.mu.Unlock()
		m.wg.Wait()
		return nil
	default:
	}
	close(m.stop)
	closers := m.closers
	m.closers = nil
	m.mu.Unlock()
	for _, c := range closers {
		c()
	}
	m.wg.Wait()
	return nil
}

func (m *Manager) stopping() bool {
	select {
	case <-m.stop:
		return true
	default:
		return false
	}
}

// appendEvent appends e, just built, to batch and hands it to sb (when
// not nil) at once, while it is in the CPU's cache.
func appendEvent(batch []event.Event, sb SinkBatch, e event.Event) []event.Event {
	batch = append(batch, e)
	if sb != nil {
		sb.Add(&batch[len(batch)-1])
	}
	return batch
}

// newBatch starts a SinkBatch (Options.Batches), or returns nil.
func (m *Manager) newBatch() SinkBatch {
	if m.o.Batches == nil {
		return nil
	}
	return m.o.Batches(m.o.BatchSize)
}

// deliver hands a batch to the sink, through sb (the SinkBatch the events
// were added to) when it is not nil. A failed write is retried with
// backoff, because the alternative is losing data the sender believes was
// delivered; after the last attempt the batch is counted as an error and
// logged. It reports whether the batch was accepted.
func (m *Manager) deliver(ctx context.Context, name string, c *counters, evs []event.Event, sb SinkBatch) bool {
	if len(evs) == 0 {
		return true
	}
	write := m.o.Sink.Write
	if sb != nil {
		write = sb.Write
	}
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := write(ctx, evs)
		if err == nil {
			c.received.Add(uint64(len(evs)))
			return true
		}
		if attempt >= 5 || ctx.Err() != nil {
			c.errors.Add(1)
			m.log.Error("sink write failed; batch not stored", "input", name, "events", len(evs), "attempts", attempt, "err", err)
			return false
		}
		m.log.Warn("sink write failed; retrying", "input", name, "events", len(evs), "attempt", attempt, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		backoff *= 2
	}
}

// finish applies the common steps to a freshly built event: normalization
// and the counters that depend on its flags.
func (m *Manager) finish(e *event.Event, c *counters) {
	if m.o.Normalize != nil {
		m.o.Normalize(e)
	}
	if e.ParseError != "" {
		c.parseErrors.Add(1)
	}
}
