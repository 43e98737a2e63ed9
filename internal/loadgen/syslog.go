package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Syslog framings of RunSyslog.
const (
	// FramingOctet is RFC 6587 octet counting around RFC 5424 messages.
	FramingOctet = "octet"
	// FramingNewline is one RFC 3164 message per line.
	FramingNewline = "newline"
)

// SyslogGen produces a deterministic, realistic mix of Linux server logs:
// sshd failures and accepts (with brute-force bursts from documentation
// addresses), sudo, cron, nginx access (with 404 scans), postfix and kernel
// firewall lines. It is not safe for concurrent use.
type SyslogGen struct {
	rng     *rand.Rand
	framing string
	// burst is the brute-force burst in progress: its address and the
	// failures still to send.
	burstIP   string
	burstLeft int
	scanIP    string
	scanLeft  int
	// stamp caches the formatted timestamp of the last millisecond.
	stampMs int64
	stamp   []byte
	msg     []byte
}

// NewSyslogGen returns a generator; the same seed gives the same stream
// for the same timestamps.
func NewSyslogGen(seed uint64, framing string) (*SyslogGen, error) {
	if framing != FramingOctet && framing != FramingNewline {
		return nil, &FlagError{Flag: "framing", Reason: fmt.Sprintf("%q is not octet or newline", framing)}
	}
	return &SyslogGen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), framing: framing, stampMs: -1}, nil
}

var (
	hosts     = []string{"web1", "web2", "db1", "mail1", "bastion", "app1", "app2", "fw1"}
	users     = []string{"alice", "bob", "carol", "deploy", "backup", "ansible"}
	badUsers  = []string{"root", "admin", "test", "oracle", "ubuntu", "pi", "user", "guest", "postgres", "git"}
	webPaths  = []string{"/", "/index.html", "/api/v1/items", "/static/app.js", "/static/style.css", "/login", "/images/logo.png", "/api/v1/cart"}
	scanPaths = []string{"/wp-login.php", "/.env", "/phpmyadmin/", "/admin.php", "/.git/config", "/cgi-bin/luci", "/xmlrpc.php", "/backup.zip"}
	agents    = []string{"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36", "curl/8.5.0"}
	cronCmds  = []string{"cd / && run-parts --report /etc/cron.hourly", "/usr/local/bin/backup.sh", "test -x /usr/sbin/anacron || run-parts /etc/cron.daily", "/usr/lib/php/sessionclean"}
	sudoCmds  = []string{"/usr/bin/systemctl restart nginx", "/usr/bin/apt-get update", "/usr/bin/journalctl -u sshd", "/bin/cat /var/log/auth.log"}
	fwPorts   = []string{"23", "445", "3389", "5900", "1433", "8080", "6379"}
)

// docIP is an address of the documentation ranges (RFC 5737), which is
// where every external sender of the stream comes from.
func (g *SyslogGen) docIP() string {
	nets := [...]string{"192.0.2.", "198.51.100.", "203.0.113."}
	return nets[g.rng.IntN(3)] + strconv.Itoa(1+g.rng.IntN(254))
}

func (g *SyslogGen) pick(s []string) string { return s[g.rng.IntN(len(s))] }

// Append appends one framed message stamped t to dst.
func (g *SyslogGen) Append(dst []byte, t time.Time) []byte {
	host := g.pick(hosts)
	var app string
	pid := 1000 + g.rng.IntN(60000)
	pri := 38 // auth.info
	m := g.msg[:0]
	switch r := g.rng.IntN(1000); {
	case g.burstLeft > 0 && r < 500:
		g.burstLeft--
		app, pri = "sshd", 86
		m = fmt.Appendf(m, "Failed password for invalid user %s from %s port %d ssh2", g.pick(badUsers), g.burstIP, 1024+g.rng.IntN(60000))
	case g.scanLeft > 0 && r < 500:
		g.scanLeft--
		app, pri = "nginx", 190
		m = g.access(m, t, g.scanIP, "GET", g.pick(scanPaths), 404, 153)
	case r < 2:
		g.burstIP, g.burstLeft = g.docIP(), 10+g.rng.IntN(21)
		app, pri = "sshd", 86
		m = fmt.Appendf(m, "Failed password for root from %s port %d ssh2", g.burstIP, 1024+g.rng.IntN(60000))
	case r < 4:
		g.scanIP, g.scanLeft = g.docIP(), 30+g.rng.IntN(40)
		app, pri = "nginx", 190
		m = g.access(m, t, g.scanIP, "GET", g.pick(scanPaths), 404, 153)
	case r < 80:
		app, pri = "sshd", 86
		m = fmt.Appendf(m, "Failed password for %s from %s port %d ssh2", g.pick(users), g.docIP(), 1024+g.rng.IntN(60000))
	case r < 110:
		app, pri = "sshd", 86
		m = fmt.Appendf(m, "Accepted publickey for %s from 10.0.%d.%d port %d ssh2: ED25519 SHA256:%016x", g.pick(users), g.rng.IntN(4), 2+g.rng.IntN(250), 1024+g.rng.IntN(60000), g.rng.Uint64())
	case r < 160:
		app, pri = "sudo", 85
		m = fmt.Appendf(m, "%s : TTY=pts/%d ; PWD=/home/%s ; USER=root ; COMMAND=%s", g.pick(users), g.rng.IntN(4), g.pick(users), g.pick(sudoCmds))
	case r < 260:
		app, pri = "CRON", 78
		m = fmt.Appendf(m, "(root) CMD (%s)", g.pick(cronCmds))
	case r < 650:
		app, pri = "nginx", 190
		status := 200
		if g.rng.IntN(50) == 0 {
			status = 404
		}
		m = g.access(m, t, "10.0."+strconv.Itoa(g.rng.IntN(4))+"."+strconv.Itoa(2+g.rng.IntN(250)), "GET", g.pick(webPaths), status, 200+g.rng.IntN(20000))
	case r < 850:
		pri = 22 // mail.info
		id := g.rng.Uint64() & 0xffffffffff
		switch g.rng.IntN(3) {
		case 0:
			app = "postfix/smtpd"
			m = fmt.Appendf(m, "connect from unknown[%s]", g.docIP())
		case 1:
			app = "postfix/qmgr"
			m = fmt.Appendf(m, "%010X: from=<%s@example.com>, size=%d, nrcpt=1 (queue active)", id, g.pick(users), 500+g.rng.IntN(50000))
		default:
			app = "postfix/smtp"
			m = fmt.Appendf(m, "%010X: to=<%s@example.org>, relay=mx.example.org[192.0.2.25]:25, delay=0.4, delays=0.1/0/0.1/0.2, dsn=2.0.0, status=sent (250 2.0.0 OK)", id, g.pick(users))
		}
	default:
		app, pri = "kernel", 4
		pid = 0
		m = fmt.Appendf(m, "[UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=%s DST=10.0.0.10 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=%d DF PROTO=TCP SPT=%d DPT=%s WINDOW=64240 RES=0x00 SYN URGP=0", g.docIP(), g.rng.IntN(65536), 1024+g.rng.IntN(60000), g.pick(fwPorts))
	}
	g.msg = m
	return g.frame(dst, t, pri, host, app, pid, m)
}

// AppendSSHFailure appends one framed sshd failure from ip.
func (g *SyslogGen) AppendSSHFailure(dst []byte, t time.Time, ip string) []byte {
	g.msg = fmt.Appendf(g.msg[:0], "Failed password for invalid user %s from %s port %d ssh2", g.pick(badUsers), ip, 1024+g.rng.IntN(60000))
	return g.frame(dst, t, 86, "bastion", "sshd", 1000+g.rng.IntN(60000), g.msg)
}

func (g *SyslogGen) access(m []byte, t time.Time, ip, method, path string, status, size int) []byte {
	return fmt.Appendf(m, `%s - - [%s] "%s %s HTTP/1.1" %d %d "-" "%s"`, ip, t.UTC().Format("02/Jan/2006:15:04:05 -0700"), method, path, status, size, g.pick(agents))
}

// frame wraps a message: RFC 5424 with an octet count, or an RFC 3164 line.
func (g *SyslogGen) frame(dst []byte, t time.Time, pri int, host, app string, pid int, msg []byte) []byte {
	if ms := t.UnixMilli(); ms != g.stampMs {
		g.stampMs = ms
		if g.framing == FramingOctet {
			g.stamp = t.UTC().AppendFormat(g.stamp[:0], "2006-01-02T15:04:05.000Z")
		} else {
			g.stamp = t.AppendFormat(g.stamp[:0], time.Stamp)
		}
	}
	if g.framing == FramingNewline {
		dst = append(dst, '<')
		dst = strconv.AppendInt(dst, int64(pri), 10)
		dst = append(dst, '>')
		dst = append(dst, g.stamp...)
		dst = append(dst, ' ')
		dst = append(dst, host...)
		dst = append(dst, ' ')
		dst = append(dst, app...)
		if pid > 0 {
			dst = append(dst, '[')
			dst = strconv.AppendInt(dst, int64(pid), 10)
			dst = append(dst, ']')
		}
		dst = append(dst, ": "...)
		dst = append(dst, msg...)
		return append(dst, '\n')
	}
	// Build the message after a placeholder, then prepend its length.
	start := len(dst)
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(pri), 10)
	dst = append(dst, ">1 "...)
	dst = append(dst, g.stamp...)
	dst = append(dst, ' ')
	dst = append(dst, host...)
	dst = append(dst, ' ')
	dst = append(dst, app...)
	dst = append(dst, ' ')
	if pid > 0 {
		dst = strconv.AppendInt(dst, int64(pid), 10)
	} else {
		dst = append(dst, '-')
	}
	dst = append(dst, " - - "...)
	dst = append(dst, msg...)
	n := len(dst) - start
	var hdr [24]byte
	h := strconv.AppendInt(hdr[:0], int64(n), 10)
	h = append(h, ' ')
	dst = append(dst, h...)
	copy(dst[start+len(h):], dst[start:start+n])
	copy(dst[start:], h)
	return dst
}

// SyslogOptions configures a syslog stream.
type SyslogOptions struct {
	// Addr is the TCP syslog listener (host:port).
	Addr string
	// Rate is messages per second over all connections; 0 sends as fast
	// as the receiver takes them.
	Rate float64
	// Duration bounds the run.
	Duration time.Duration
	// Connections is the number of TCP connections.
	Connections int
	// Framing is FramingOctet or FramingNewline.
	Framing string
	// Seed makes the stream reproducible.
	Seed uint64
	// MarkEvery, when positive, sends a marked SSH brute-force burst (ten
	// failures from a fresh 2001:db8:ffff::/48 address) on the first
	// connection at this interval; the send time of each burst's tenth
	// failure is recorded.
	MarkEvery time.Duration
	// Receiver, with MarkEvery, is the loopback address of a webhook
	// receiver to start: a notification naming a marked address measures
	// the delay from the tenth failure's send to the alert's arrival.
	Receiver string
	// Drain is how long to wait after the stream for the last alerts.
	Drain time.Duration
}

// SyslogReport is the outcome of a syslog stream.
type SyslogReport struct {
	Sent    int64
	Elapsed time.Duration
	Marks   int
	// Alerted counts marked bursts whose alert arrived; the quantiles are
	// over them.
	Alerted            int
	P50, P90, P99, Max time.Duration
	Rate               float64
	Connections        int
	Framing            string
	// NotificationsTotal counts every webhook POST (marked or not).
	NotificationsTotal int64
}

// String renders the report as one line of key=value pairs.
func (r SyslogReport) String() string {
	s := fmt.Sprintf("sent=%d elapsed_s=%.2f sent_per_s=%.0f rate=%.0f connections=%d framing=%s",
		r.Sent, r.Elapsed.Seconds(), float64(r.Sent)/r.Elapsed.Seconds(), r.Rate, r.Connections, r.Framing)
	if r.Marks > 0 {
		s += fmt.Sprintf(" marks=%d alerted=%d notifications=%d latency_p50_ms=%.1f p90_ms=%.1f p99_ms=%.1f max_ms=%.1f",
			r.Marks, r.Alerted, r.NotificationsTotal, ms(r.P50), ms(r.P90), ms(r.P99), ms(r.Max))
	}
	return s
}

func (o *SyslogOptions) check() error {
	switch {
	case o.Rate < 0:
		return &FlagError{Flag: "rate", Reason: "must not be negative"}
	case o.Duration <= 0:
		return &FlagError{Flag: "duration", Reason: "must be positive"}
	case o.Connections < 1:
		return &FlagError{Flag: "connections", Reason: "must be at least 1"}
	case o.Framing != FramingOctet && o.Framing != FramingNewline:
		return &FlagError{Flag: "framing", Reason: fmt.Sprintf("%q is not octet or newline", o.Framing)}
	case o.MarkEvery < 0:
		return &FlagError{Flag: "mark-every", Reason: "must not be negative"}
	case o.Receiver != "" && o.MarkEvery == 0:
		return &FlagError{Flag: "receiver", Reason: "needs --mark-every"}
	}
	if _, err := netip.ParseAddrPort(o.Addr); err != nil {
		return &FlagError{Flag: "addr", Reason: fmt.Sprintf("%q is not ip:port", o.Addr)}
	}
	return nil
}

// marks records the send time of every marked burst and the first alert
// naming it.
type marks struct {
	mu      sync.Mutex
	sent    map[string]time.Time
	delays  map[string]time.Duration
	total   int64
	prefix  string
	counter uint32
}

func newMarks(now time.Time) *marks {
	// A prefix per run, so that bursts of an earlier run against the same
	// server (still open as alerts) are never confused with this run's.
	return &marks{sent: map[string]time.Time{}, delays: map[string]time.Duration{},
		prefix: fmt.Sprintf("2001:db8:ffff:%x:", uint16(now.Unix()))}
}

func (mk *marks) next() string {
	mk.mu.Lock()
	defer mk.mu.Unlock()
	mk.counter++
	return netip.MustParseAddr(mk.prefix + ":" + strconv.FormatUint(uint64(mk.counter), 16)).String()
}

func (mk *marks) sentAt(ip string, t time.Time) {
	mk.mu.Lock()
	mk.sent[ip] = t
	mk.mu.Unlock()
}

// ServeHTTP takes a webhook notification and matches it to a mark.
func (mk *marks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	at := time.Now()
	mk.mu.Lock()
	mk.total++
	if i := bytes.Index(body, []byte(mk.prefix)); i >= 0 {
		j := i
		for j < len(body) && (body[j] == ':' || isHex(body[j])) {
			j++
		}
		ip := string(body[i:j])
		if t, ok := mk.sent[ip]; ok {
			if _, seen := mk.delays[ip]; !seen {
				mk.delays[ip] = at.Sub(t)
			}
		}
	}
	mk.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }

func (mk *marks) done() (sent, alerted int) {
	mk.mu.Lock()
	defer mk.mu.Unlock()
	return len(mk.sent), len(mk.delays)
}

// RunSyslog sends the stream over TCP until Duration is over or ctx ends.
func RunSyslog(ctx context.Context, o SyslogOptions) (SyslogReport, error) {
	if err := o.check(); err != nil {
		return SyslogReport{}, err
	}
	rep := SyslogReport{Rate: o.Rate, Connections: o.Connections, Framing: o.Framing}
	var mk *marks
	if o.MarkEvery > 0 {
		mk = newMarks(time.Now())
		if o.Receiver != "" {
			ln, err := net.Listen("tcp", o.Receiver)
			if err != nil {
				return rep, fmt.Errorf("loadgen syslog: receiver: %w", err)
			}
			srv := &http.Server{Handler: mk, ReadHeaderTimeout: 5 * time.Second}
			go func() { _ = srv.Serve(ln) }()
			defer srv.Close()
		}
	}
	conns := make([]net.Conn, o.Connections)
	var d net.Dialer
	for i := range conns {
		c, err := d.DialContext(ctx, "tcp", o.Addr)
		if err != nil {
			for _, c := range conns[:i] {
				c.Close()
			}
			return rep, fmt.Errorf("loadgen syslog: connect %s: %w", o.Addr, err)
		}
		conns[i] = c
	}
	runCtx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var sent atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(conns))
	for i, c := range conns {
		wg.Go(func() {
			defer c.Close()
			var cm *marks
			if i == 0 {
				cm = mk
			}
			errs[i] = sendConn(runCtx, c, o, uint64(i), o.Rate/float64(len(conns)), start, cm, &sent)
		})
	}
	wg.Wait()
	rep.Elapsed = time.Since(start)
	rep.Sent = sent.Load()
	for _, err := range errs {
		if err != nil && ctx.Err() == nil {
			return rep, fmt.Errorf("loadgen syslog: %w", err)
		}
	}
	if mk != nil && o.Receiver != "" {
		deadline := time.Now().Add(o.Drain)
		for time.Now().Before(deadline) {
			if s, a := mk.done(); a >= s {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			if ctx.Err() != nil {
				break
			}
		}
		mk.mu.Lock()
		ds := make([]time.Duration, 0, len(mk.delays))
		for _, d := range mk.delays {
			ds = append(ds, d)
		}
		rep.Marks, rep.Alerted, rep.NotificationsTotal = len(mk.sent), len(ds), mk.total
		mk.mu.Unlock()
		slices.Sort(ds)
		rep.P50, rep.P90, rep.P99, rep.Max = quantiles(ds)
	} else if mk != nil {
		rep.Marks, _ = mk.done()
	}
	return rep, nil
}

// sendConn writes one connection's share; rate 0 is unpaced.
func sendConn(ctx context.Context, c net.Conn, o SyslogOptions, n uint64, rate float64, start time.Time, mk *marks, sent *atomic.Int64) error {
	g, err := NewSyslogGen(o.Seed+n*7919, o.Framing)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(c, 64<<10)
	buf := make([]byte, 0, 64<<10)
	var count int64
	nextMark := start.Add(o.MarkEvery)
	const tick = 5 * time.Millisecond
	go func() { <-ctx.Done(); _ = c.SetWriteDeadline(time.Now()) }()
	for ctx.Err() == nil {
		now := time.Now()
		due := int64(256)
		if rate > 0 {
			due = int64(now.Sub(start).Seconds()*rate) - count
		}
		for due > 0 {
			batch := min(due, 256)
			buf = buf[:0]
			for range batch {
				buf = g.Append(buf, now)
			}
			if _, err := w.Write(buf); err != nil {
				return ignoreDeadline(ctx, err)
			}
			count += batch
			sent.Add(batch)
			due -= batch
		}
		if mk != nil && !now.Before(nextMark) {
			nextMark = nextMark.Add(o.MarkEvery)
			ip := mk.next()
			buf = buf[:0]
			for range 9 {
				buf = g.AppendSSHFailure(buf, now, ip)
			}
			if _, err := w.Write(buf); err != nil {
				return ignoreDeadline(ctx, err)
			}
			if err := w.Flush(); err != nil {
				return ignoreDeadline(ctx, err)
			}
			t := time.Now()
			buf = g.AppendSSHFailure(buf[:0], t, ip)
			if _, err := w.Write(buf); err != nil {
				return ignoreDeadline(ctx, err)
			}
			mk.sentAt(ip, t)
			sent.Add(10)
		}
		if err := w.Flush(); err != nil {
			return ignoreDeadline(ctx, err)
		}
		if rate > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(tick):
			}
		}
	}
	return nil
}

func ignoreDeadline(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// WriteSyslogFile writes count messages of the stream to w, stamped from
// start on at rate messages per second of log time (so a replay sees the
// same pacing as the live stream).
func WriteSyslogFile(w io.Writer, framing string, seed uint64, count int64, rate float64, start time.Time) error {
	if count < 1 {
		return &FlagError{Flag: "count", Reason: "must be at least 1"}
	}
	if rate <= 0 {
		return &FlagError{Flag: "rate", Reason: "must be positive in --file mode (it spaces the timestamps)"}
	}
	g, err := NewSyslogGen(seed, framing)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	step := float64(time.Second) / rate
	var buf []byte
	for i := range count {
		buf = g.Append(buf[:0], start.Add(time.Duration(float64(i)*step)))
		if _, err := bw.Write(buf); err != nil {
			return fmt.Errorf("loadgen syslog: write: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("loadgen syslog: write: %w", err)
	}
	return nil
}

// syslogCmd is `nocsoc loadgen syslog`.
func syslogCmd(ctx context.Context, args []string, stdout io.Writer) error {
	var o SyslogOptions
	fs := newFlags("syslog")
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:5514", "TCP syslog listener")
	fs.Float64Var(&o.Rate, "rate", 10000, "messages per second over all connections (0: as fast as possible)")
	fs.DurationVar(&o.Duration, "duration", 30*time.Second, "how long to send")
	fs.IntVar(&o.Connections, "connections", 4, "TCP connections")
	fs.StringVar(&o.Framing, "framing", FramingOctet, "octet (RFC 6587 + RFC 5424) or newline (RFC 3164)")
	fs.Uint64Var(&o.Seed, "seed", 1, "random seed of the stream")
	fs.DurationVar(&o.MarkEvery, "mark-every", 0, "send a marked 10-failure SSH brute-force burst at this interval (0: none)")
	fs.StringVar(&o.Receiver, "receiver", "", "with --mark-every: serve a webhook receiver here and measure burst -> alert latency")
	fs.DurationVar(&o.Drain, "drain", 10*time.Second, "with --receiver: wait this long for the last alerts")
	file := fs.String("file", "", "write the stream to this file instead of sending it")
	count := fs.Int64("count", 1000000, "with --file: messages to write")
	startAt := fs.String("start", "", "with --file: RFC 3339 time of the first message (default: now)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *file != "" {
		start := time.Now().Truncate(time.Second)
		if *startAt != "" {
			t, err := time.Parse(time.RFC3339, *startAt)
			if err != nil {
				return UsageError{"loadgen syslog: --start: " + err.Error()}
			}
			start = t
		}
		f, err := os.Create(*file)
		if err != nil {
			return fmt.Errorf("loadgen syslog: %w", err)
		}
		began := time.Now()
		if err := WriteSyslogFile(f, o.Framing, o.Seed, *count, o.Rate, start); err != nil {
			f.Close()
			return usageIfFlag("syslog", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("loadgen syslog: %w", err)
		}
		_, err = fmt.Fprintf(stdout, "file=%s lines=%d framing=%s seed=%d written_s=%.2f\n", *file, *count, o.Framing, o.Seed, time.Since(began).Seconds())
		return err
	}
	r, err := RunSyslog(ctx, o)
	if err != nil {
		return usageIfFlag("syslog", err)
	}
	_, err = fmt.Fprintln(stdout, r.String())
	return err
}
