package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/event"
)

func TestConfigValidate(t *testing.T) {
	ok := SyslogInput{Name: "u", Protocol: "udp", Listen: "127.0.0.1:0"}
	tests := []struct {
		name  string
		cfg   Config
		field string // "" = valid
	}{
		{"valid", Config{Syslog: []SyslogInput{ok}, Files: []FileInput{{Name: "f", Paths: []string{"/var/log/*.log"}}}}, ""},
		{"default listen", Config{Syslog: []SyslogInput{{Name: "u", Protocol: "tcp"}}}, ""},
		{"no name", Config{Syslog: []SyslogInput{{Protocol: "udp"}}}, "syslog[0].name"},
		{"dup name", Config{Syslog: []SyslogInput{ok, ok}}, "syslog[1].name"},
		{"bad protocol", Config{Syslog: []SyslogInput{ok, {Name: "x", Protocol: "sctp"}}}, "syslog[1].protocol"},
		{"bad listen", Config{Syslog: []SyslogInput{ok, {Name: "x", Protocol: "tcp", Listen: "localhost"}}}, "syslog[1].listen"},
		{"bad port", Config{Syslog: []SyslogInput{{Name: "x", Protocol: "tcp", Listen: "127.0.0.1:99999"}}}, "syslog[0].listen"},
		{"tls without cert", Config{Syslog: []SyslogInput{{Name: "x", Protocol: "tls", TLSKey: "k"}}}, "syslog[0].tls_cert"},
		{"cert on udp", Config{Syslog: []SyslogInput{{Name: "x", Protocol: "udp", TLSCert: "c"}}}, "syslog[0].tls_cert"},
		{"max_line", Config{Syslog: []SyslogInput{{Name: "x", Protocol: "udp", MaxLine: -1}}}, "syslog[0].max_line"},
		{"no paths", Config{Files: []FileInput{{Name: "f"}}}, "files[0].paths"},
		{"bad glob", Config{Files: []FileInput{{Name: "f", Paths: []string{"/a", "/x/[a"}}}}, "files[0].paths[1]"},
		{"bad format", Config{Files: []FileInput{{Name: "f", Paths: []string{"/a"}, Format: "xml"}}}, "files[0].format"},
		{"name shared by file", Config{Syslog: []SyslogInput{ok}, Files: []FileInput{{Name: "u", Paths: []string{"/a"}}}}, "files[0].name"},
		{"negative poll", Config{Files: []FileInput{{Name: "f", Paths: []string{"/a"}, Poll: check.Duration(-time.Second)}}}, "files[0].poll"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var fe *check.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("want *check.FieldError for %s, got %v", tt.field, err)
			}
			if fe.Field != tt.field {
				t.Errorf("field = %q, want %q (%v)", fe.Field, tt.field, err)
			}
		})
	}
}

func TestStartErrorNamesInput(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	m := NewManager(Options{Sink: newSink()})
	err = m.Start(t.Context(), Config{Syslog: []SyslogInput{{Name: "busy", Protocol: "tcp", Listen: ln.Addr().String()}}})
	if err == nil || !strings.Contains(err.Error(), `"busy"`) {
		t.Fatalf("want an error naming input busy, got %v", err)
	}
}

func TestParseSyslogMessages(t *testing.T) {
	p := newMsgParser(time.UTC)
	tests := []struct {
		name   string
		in     string
		time   time.Time
		host   string
		fields map[string]any
		perr   string // substring of ParseError; "" = none
	}{
		{
			name: "rfc3164",
			in:   "<34>Oct 11 22:14:15 mymachine su[77]: 'su root' failed for lonvick on /dev/pts/8",
			time: time.Date(2025, 10, 11, 22, 14, 15, 0, time.UTC), host: "mymachine",
			fields: map[string]any{"process.name": "su", "process.pid": 77.0, "message": "'su root' failed for lonvick on /dev/pts/8",
				"log.syslog.severity.code": 2.0, "log.syslog.severity.name": "critical", "log.syslog.facility.code": 4.0, "log.syslog.facility.name": "auth"},
		},
		{
			name: "rfc3164 without PRI (auth.log)",
			in:   "Feb 21 21:54:44 localhost sshd[3402]: Accepted publickey for vagrant from 10.0.2.2 port 63673 ssh2",
			time: time.Date(2026, 2, 21, 21, 54, 44, 0, time.UTC), host: "localhost",
			fields: map[string]any{"process.name": "sshd", "process.pid": 3402.0, "message": "Accepted publickey for vagrant from 10.0.2.2 port 63673 ssh2"},
		},
		{
			name: "rfc5424 with structured data",
			in:   `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application"] An application event`,
			time: time.Date(2003, 10, 11, 22, 14, 15, 3e6, time.UTC), host: "mymachine.example.com",
			fields: map[string]any{"process.name": "evntslog", "log.syslog.msgid": "ID47", "message": "An application event",
				"log.syslog.structured_data.exampleSDID@32473.iut": "3", "log.syslog.structured_data.exampleSDID@32473.eventSource": "Application",
				"log.syslog.severity.name": "notice", "log.syslog.facility.name": "local4"},
		},
		{
			// Escapes in a parameter make the parser build the value anew;
			// Raw (the bytes it read in place) must come out unchanged.
			name: "rfc5424 with escaped structured data",
			in:   `<14>1 2026-03-01T10:00:00Z h app - - [x@1 p="a\"b\\c\]d"] m`,
			time: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), host: "h",
			fields: map[string]any{"log.syslog.structured_data.x@1.p": `a"b\c]d`, "message": "m"},
		},
		{
			name: "not syslog", in: "hello world", time: fixedNow,
			fields: map[string]any{"message": "hello world"}, perr: "syslog:",
		},
		{
			name: "NUL byte", in: "<13>Mar  1 10:00:00 h app: a\x00b", time: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), host: "h",
			fields: map[string]any{"message": "a\uFFFDb"}, perr: "NUL",
		},
		{
			name: "invalid UTF-8", in: "<13>Mar  1 10:00:00 h app: caf\xe9", time: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), host: "h",
			fields: map[string]any{"message": "caf\uFFFD"}, perr: "invalid UTF-8",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := p.parse([]byte(tt.in), frameInfo{}, fixedNow, InputSyslogUDP, "in", "")
			if e.Raw != tt.in {
				t.Errorf("Raw = %q, want the input as received", e.Raw)
			}
			if !e.Time.Equal(tt.time) {
				t.Errorf("Time = %v, want %v", e.Time, tt.time)
			}
			if e.Host != tt.host {
				t.Errorf("Host = %q, want %q", e.Host, tt.host)
			}
			for k, v := range tt.fields {
				if e.Fields[k] != v {
					t.Errorf("%s = %#v, want %#v", k, e.Fields[k], v)
				}
			}
			if tt.perr == "" && e.ParseError != "" {
				t.Errorf("unexpected ParseError %q", e.ParseError)
			}
			if tt.perr != "" && !strings.Contains(e.ParseError, tt.perr) {
				t.Errorf("ParseError = %q, want it to mention %q", e.ParseError, tt.perr)
			}
		})
	}
}

func TestFixTimeAroundNewYear(t *testing.T) {
	p := newMsgParser(time.UTC)
	stamp := func(mon time.Month, day int) time.Time { return time.Date(0, mon, day, 23, 59, 0, 0, time.UTC) }
	tests := []struct {
		now  time.Time
		ts   time.Time
		want int
	}{
		{time.Date(2026, 1, 1, 0, 5, 0, 0, time.UTC), stamp(time.December, 31), 2025},
		{time.Date(2025, 12, 31, 23, 58, 0, 0, time.UTC), time.Date(0, 1, 1, 0, 0, 30, 0, time.UTC), 2026},
		{time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), stamp(time.May, 31), 2026},
	}
	for _, tt := range tests {
		if got := p.fixTime(tt.ts, tt.now).Year(); got != tt.want {
			t.Errorf("fixTime(%v, now %v) year = %d, want %d", tt.ts, tt.now, got, tt.want)
		}
	}
}

func TestUDP(t *testing.T) {
	sink := newSink()
	m := start(t, sink, Config{Syslog: []SyslogInput{{Name: "udp", Protocol: "udp", Listen: "127.0.0.1:0"}}}, nil)
	c := dial(t, "udp", m.Addrs()["udp"])
	msgs := []string{
		"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8\n",
		`<165>1 2003-10-11T22:14:15.003Z host5424 app 123 ID1 - hello 5424`,
	}
	for _, s := range msgs {
		if _, err := c.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	evs := sink.waitN(t, 2)
	byHost := map[string]string{}
	for _, e := range evs {
		if e.Input != InputSyslogUDP || e.Fields["input.name"] != "udp" {
			t.Errorf("input = %q/%v", e.Input, e.Fields["input.name"])
		}
		byHost[e.Host] = e.String("message")
	}
	if byHost["mymachine"] != "'su root' failed for lonvick on /dev/pts/8" || byHost["host5424"] != "hello 5424" {
		t.Errorf("messages by host = %v", byHost)
	}
	waitFor(t, "stats", func() bool { return m.Stats()["udp"].Received == 2 })
}

func TestUDPDropsCounted(t *testing.T) {
	sink := newSink()
	sink.gate = make(chan struct{})
	m := start(t, sink, Config{Syslog: []SyslogInput{{Name: "udp", Protocol: "udp", Listen: "127.0.0.1:0", QueueSize: 1}}},
		func(o *Options) { o.BatchSize = 1 })
	c := dial(t, "udp", m.Addrs()["udp"])
	const sent = 200
	for i := range sent {
		if _, err := fmt.Fprintf(c, "<13>Mar  1 10:00:00 h app: msg %d", i); err != nil {
			t.Fatal(err)
		}
	}
	// The parser is stuck in the sink with one event, one more fits the
	// queue: the rest must be counted as drops, not block the socket.
	waitFor(t, "udp drops", func() bool { return m.Stats()["udp"].UDPDrops > 0 })
	close(sink.gate)
	_ = m.Stop()
	st := m.Stats()["udp"]
	stored := len(sink.events())
	if stored < 1 || uint64(stored)+st.UDPDrops > sent {
		t.Errorf("stored %d + dropped %d, sent %d", stored, st.UDPDrops, sent)
	}
	if st.Received != uint64(stored) {
		t.Errorf("Received = %d, stored %d", st.Received, stored)
	}
}

// writeSplit writes b in chunks of n bytes, one Write each.
func writeSplit(t *testing.T, c net.Conn, b []byte, n int) {
	t.Helper()
	for len(b) > 0 {
		k := min(n, len(b))
		if _, err := c.Write(b[:k]); err != nil {
			t.Fatal(err)
		}
		b = b[k:]
	}
}

func octet(msgs ...string) []byte {
	var sb strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&sb, "%d %s", len(m), m)
	}
	return []byte(sb.String())
}

func TestTCPFraming(t *testing.T) {
	m1 := "<13>1 2026-03-01T10:00:00Z h1 app 1 - - first"
	m2 := "<13>1 2026-03-01T10:00:01Z h1 app 1 - - second"
	m3 := "<13>Mar  1 10:00:02 h1 app: third"
	long := "<13>Mar  1 10:00:03 h1 app: " + strings.Repeat("x", 100*1024)
	type want struct {
		msg  string // message field, or prefix when it ends with "…"
		perr string
	}
	tests := []struct {
		name  string
		data  []byte
		chunk int
		want  []want
	}{
		{"newline", []byte(m1 + "\n" + m2 + "\r\n" + m3 + "\n"), 1 << 20, []want{{"first", ""}, {"second", ""}, {"third", ""}}},
		{"newline byte by byte", []byte(m1 + "\n" + m3 + "\n"), 1, []want{{"first", ""}, {"third", ""}}},
		{"octet many per write", octet(m1, m2, m3), 1 << 20, []want{{"first", ""}, {"second", ""}, {"third", ""}}},
		{"octet split over writes", octet(m1, m2, m3), 3, []want{{"first", ""}, {"second", ""}, {"third", ""}}},
		{"octet with LF after frames", []byte(string(octet(m1)) + "\n" + string(octet(m2)) + "\n"), 1 << 20, []want{{"first", ""}, {"second", ""}}},
		{"wrong octet count resynchronises", []byte("10 " + m1 + string(octet(m2))), 1 << 20,
			[]want{{"", ""}, {"", "invalid frame header"}, {"second", ""}}},
		{"truncated frame at EOF", []byte(string(octet(m1)) + "200 " + m2), 1 << 20, []want{{"first", ""}, {"second", "incomplete frame"}}},
		{"NUL bytes", []byte("<13>Mar  1 10:00:02 h1 app: a\x00b\n"), 1 << 20, []want{{"a\uFFFDb", "NUL"}}},
		{"invalid UTF-8", []byte("<13>Mar  1 10:00:02 h1 app: caf\xe9\n"), 1 << 20, []want{{"caf\uFFFD", "invalid UTF-8"}}},
		{"100 KiB line", []byte(long + "\n" + m3 + "\n"), 4096, []want{{"xxxx…", fmt.Sprintf("truncated: line of %d bytes exceeds 65536", len(long))}, {"third", ""}}},
		{"100 KiB octet frame", octet(long, m3), 4096, []want{{"xxxx…", fmt.Sprintf("truncated: line of %d bytes exceeds 65536", len(long))}, {"third", ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := newSink()
			m := start(t, sink, Config{Syslog: []SyslogInput{{Name: "tcp", Protocol: "tcp", Listen: "127.0.0.1:0"}}}, nil)
			c := dial(t, "tcp", m.Addrs()["tcp"])
			writeSplit(t, c, tt.data, tt.chunk)
			_ = c.Close() // EOF ends any partial frame
			evs := sink.waitN(t, len(tt.want))
			waitFor(t, "connection closed", func() bool { return m.Stats()["tcp"].Connections == 0 })
			evs = sink.events()
			if len(evs) != len(tt.want) {
				for _, e := range evs {
					t.Logf("got %q (%s)", e.String("message"), e.ParseError)
				}
				t.Fatalf("got %d events, want %d", len(evs), len(tt.want))
			}
			for i, w := range tt.want {
				e := evs[i]
				msg := e.String("message")
				if p, ok := strings.CutSuffix(w.msg, "…"); ok {
					if !strings.HasPrefix(msg, p) {
						t.Errorf("event %d: message %.40q…, want prefix %q", i, msg, p)
					}
				} else if w.msg != "" && msg != w.msg {
					t.Errorf("event %d: message %q, want %q", i, msg, w.msg)
				}
				if w.perr == "" && e.ParseError != "" && w.msg != "" {
					t.Errorf("event %d: unexpected ParseError %q", i, e.ParseError)
				}
				if w.perr != "" && !strings.Contains(e.ParseError, w.perr) {
					t.Errorf("event %d: ParseError %q, want %q", i, e.ParseError, w.perr)
				}
				if len(e.Raw) > 65536 {
					t.Errorf("event %d: Raw of %d bytes exceeds max_line", i, len(e.Raw))
				}
			}
			// Nothing received is dropped: every byte of the stream is in
			// some event (framing headers aside).
			var total int
			for _, e := range evs {
				total += len(e.Raw)
			}
			if total == 0 {
				t.Error("no data stored")
			}
		})
	}
}

func TestTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	sink := newSink()
	m := start(t, sink, Config{Syslog: []SyslogInput{{Name: "tls", Protocol: "tls", Listen: "127.0.0.1:0",
		TLSCert: certFile, TLSKey: keyFile, HandshakeTimeout: check.Duration(300 * time.Millisecond)}}}, nil)
	addr := m.Addrs()["tls"]

	// A client that connects and never handshakes must not block others.
	stalled := dial(t, "tcp", addr)
	_ = stalled

	c, err := tls.Dial("tcp", addr.String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msgs := []string{}
	for i := range 50 {
		msgs = append(msgs, fmt.Sprintf("<13>1 2026-03-01T10:00:00Z tlshost app - - - msg %d", i))
	}
	if _, err := c.Write(octet(msgs...)); err != nil {
		t.Fatal(err)
	}
	evs := sink.waitN(t, 50)
	for i, e := range evs {
		if e.Input != InputSyslogTLS || e.String("message") != fmt.Sprintf("msg %d", i) {
			t.Fatalf("event %d: %s %q", i, e.Input, e.String("message"))
		}
	}
	// The stalled client is cut off by the handshake timeout.
	waitFor(t, "handshake timeout", func() bool { return m.Stats()["tls"].Errors >= 1 })
	buf := make([]byte, 1)
	_ = stalled.SetReadDeadline(time.Now().Add(waitLimit))
	if _, err := stalled.Read(buf); err == nil {
		t.Error("stalled connection still open")
	}

	// The handshake's deadline ends with the handshake: a client that
	// says nothing for longer after it is still read afterwards.
	quiet, err := tls.Dial("tcp", addr.String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()
	time.Sleep(2 * 300 * time.Millisecond)
	if _, err := quiet.Write(octet("<13>1 2026-03-01T10:00:01Z tlshost app - - - after a pause")); err != nil {
		t.Fatal(err)
	}
	if evs := sink.waitN(t, 51); evs[50].String("message") != "after a pause" {
		t.Fatalf("event after the pause: %q", evs[50].String("message"))
	}
}

func TestTLSBadCertNamesInput(t *testing.T) {
	dir := t.TempDir()
	bad := dir + "/missing.pem"
	m := NewManager(Options{Sink: newSink()})
	err := m.Start(t.Context(), Config{Syslog: []SyslogInput{{Name: "sec", Protocol: "tls", Listen: "127.0.0.1:0", TLSCert: bad, TLSKey: bad}}})
	if err == nil || !strings.Contains(err.Error(), `"sec"`) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}

// TestTCPBackPressure: while the sink is blocked the reader stops reading,
// the sender's writes block; when the sink resumes nothing is lost.
func TestTCPBackPressure(t *testing.T) {
	sink := newSink()
	sink.gate = make(chan struct{})
	m := start(t, sink, Config{Syslog: []SyslogInput{{Name: "tcp", Protocol: "tcp", Listen: "127.0.0.1:0"}}}, nil)
	c := dial(t, "tcp", m.Addrs()["tcp"])
	// 20 MB: more than the kernel's socket buffers on both sides hold.
	const n = 20000
	pad := strings.Repeat("p", 1000)
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, "<13>Mar  1 10:00:00 h app: message number %07d %s\n", i, pad)
	}
	data := []byte(sb.String())
	blocked := false
	for len(data) > 0 {
		_ = c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
		k, err := c.Write(data)
		data = data[k:]
		if err != nil {
			if !isTimeout(err) {
				t.Fatal(err)
			}
			if !blocked {
				blocked = true
				if got := m.Stats()["tcp"].Received; got != 0 {
					t.Errorf("Received = %d while the sink is blocked", got)
				}
				close(sink.gate)
			}
		}
	}
	if !blocked {
		t.Fatal("writes never blocked while the sink was blocked: no back-pressure")
	}
	_ = c.Close()
	evs := sink.waitN(t, n)
	if len(evs) != n {
		t.Fatalf("stored %d, sent %d", len(evs), n)
	}
	for i, e := range evs {
		if want := fmt.Sprintf("message number %07d %s", i, pad); e.String("message") != want {
			t.Fatalf("event %d = %.40q, want %.40q (lost or reordered)", i, e.String("message"), want)
		}
	}
}

func TestStopFlushes(t *testing.T) {
	sink := newSink()
	m := start(t, sink, Config{Syslog: []SyslogInput{{Name: "tcp", Protocol: "tcp", Listen: "127.0.0.1:0"}}},
		func(o *Options) { o.FlushEvery = time.Hour })
	c := dial(t, "tcp", m.Addrs()["tcp"])
	if _, err := c.Write([]byte("<13>Mar  1 10:00:00 h app: one\n<13>Mar  1 10:00:00 h app: two\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bytes read", func() bool { return m.Stats()["tcp"].Bytes > 0 && m.Stats()["tcp"].Bytes >= 60 })
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := len(sink.events()); got != 2 {
		t.Fatalf("after Stop: %d events stored, want 2", got)
	}
}

// prepSink is a Sink with batches (Options.Batches) that records what each
// batch was given by Add and checks that Write stores exactly those
// events; fail, when set, fails the first Write of every batch.
type prepSink struct {
	*collectSink
	mu      sync.Mutex
	batches int
	added   []string // message of every event added, in order
	bad     []string // what went wrong
	fail    bool
}

type prepBatch struct {
	s     *prepSink
	added []*event.Event
	tries int
}

func (s *prepSink) newBatch(int) SinkBatch {
	s.mu.Lock()
	s.batches++
	s.mu.Unlock()
	return &prepBatch{s: s}
}

func (b *prepBatch) Add(e *event.Event) {
	// Add comes after normalization: the event is complete.
	if e.Input == "" || e.Time.IsZero() {
		b.s.note("Add before the event was built")
	}
	b.added = append(b.added, e)
	b.s.mu.Lock()
	b.s.added = append(b.s.added, e.String("message"))
	b.s.mu.Unlock()
}

func (b *prepBatch) Write(ctx context.Context, evs []event.Event) error {
	if len(evs) != len(b.added) {
		b.s.note(fmt.Sprintf("Write of %d events after %d added", len(evs), len(b.added)))
	}
	for i := range evs {
		if i < len(b.added) && b.added[i] != &evs[i] {
			b.s.note(fmt.Sprintf("event %d written is not the one added", i))
		}
	}
	b.tries++
	if b.s.fail && b.tries == 1 {
		return errors.New("sink unavailable")
	}
	return b.s.collectSink.Write(ctx, evs)
}

// Write is the Sink's own Write, which the input must not use.
func (s *prepSink) Write(context.Context, []event.Event) error {
	s.note("Write outside a batch")
	return errors.New("write outside a batch")
}

func (s *prepSink) note(msg string) {
	s.mu.Lock()
	s.bad = append(s.bad, msg)
	s.mu.Unlock()
}

// Every input with Options.Batches hands each event to its batch as soon
// as it is built, and writes each batch through it (retries too).
func TestBatchesPrepareEachEvent(t *testing.T) {
	var want, lines []string
	for i := range 25 {
		msg := fmt.Sprintf("event %d", i)
		want = append(want, msg)
		lines = append(lines, "<13>1 2026-03-01T10:00:00Z h1 app 1 - - "+msg)
	}
	inputs := []struct {
		name string
		cfg  func(t *testing.T) Config
		send func(t *testing.T, m *Manager)
	}{
		{"tcp", func(*testing.T) Config {
			return Config{Syslog: []SyslogInput{{Name: "in", Protocol: "tcp", Listen: "127.0.0.1:0"}}}
		}, func(t *testing.T, m *Manager) {
			c := dial(t, "tcp", m.Addrs()["in"])
			writeSplit(t, c, octet(lines...), 1<<20)
			_ = c.Close()
		}},
		{"udp", func(*testing.T) Config {
			return Config{Syslog: []SyslogInput{{Name: "in", Protocol: "udp", Listen: "127.0.0.1:0"}}}
		}, func(t *testing.T, m *Manager) {
			c := dial(t, "udp", m.Addrs()["in"])
			for _, l := range lines {
				if _, err := c.Write([]byte(l)); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"file", func(t *testing.T) Config {
			p := filepath.Join(t.TempDir(), "app.log")
			if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return Config{Files: []FileInput{{Name: "in", Paths: []string{p}, Format: "syslog", Poll: check.Duration(5 * time.Millisecond)}}}
		}, func(*testing.T, *Manager) {}},
	}
	for _, in := range inputs {
		for _, fail := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/first write fails=%v", in.name, fail), func(t *testing.T) {
				sink := &prepSink{collectSink: newSink(), fail: fail}
				m := start(t, sink, in.cfg(t), func(o *Options) { o.Batches = sink.newBatch; o.BatchSize = 10 })
				in.send(t, m)
				evs := sink.waitN(t, len(want))
				sink.mu.Lock()
				defer sink.mu.Unlock()
				if len(sink.bad) > 0 {
					t.Fatalf("batches misused: %v", sink.bad)
				}
				var got []string
				for _, e := range evs {
					got = append(got, e.String("message"))
				}
				added := slices.Clone(sink.added)
				// UDP may reorder datagrams; the others keep the order.
				if in.name == "udp" {
					slices.Sort(got)
					slices.Sort(added)
					want := slices.Sorted(slices.Values(want))
					if !slices.Equal(added, want) || !slices.Equal(got, want) {
						t.Errorf("added %q, stored %q, want %q", added, got, want)
					}
				} else if !slices.Equal(added, want) || !slices.Equal(got, want) {
					t.Errorf("added %q, stored %q, want %q", added, got, want)
				}
				// Batches of 10: three were written, and the next one started.
				if sink.batches < 3 {
					t.Errorf("%d batches started, want at least 3", sink.batches)
				}
			})
		}
	}
}
