package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/event"
)

// streamInput is one TCP or TLS listener and its connections.
type streamInput struct {
	m       *Manager
	cfg     SyslogInput
	kind    string
	c       *counters
	ln      net.Listener
	tlsConf *tls.Config

	mu      sync.Mutex
	conns   map[*streamConn]struct{}
	stopped bool
}

// streamConn guards a connection's read deadline: the reader moves it to
// flush partial batches on time, Stop moves it to the past to end the
// read, and Stop must win.
type streamConn struct {
	net.Conn
	mu      sync.Mutex
	stopped bool
}

func (sc *streamConn) setReadDeadline(t time.Time) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if !sc.stopped {
		_ = sc.Conn.SetReadDeadline(t)
	}
}

func (sc *streamConn) stop() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.stopped = true
	_ = sc.Conn.SetDeadline(time.Unix(1, 0))
}

func (sc *streamConn) isStopped() bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.stopped
}

func (m *Manager) startTCP(ctx context.Context, s SyslogInput) error {
	in := &streamInput{m: m, cfg: s, kind: InputSyslogTCP, conns: map[*streamConn]struct{}{}}
	addr := s.Listen
	if addr == "" {
		addr = "127.0.0.1:5514"
	}
	if s.Protocol == "tls" {
		in.kind = InputSyslogTLS
		if s.Listen == "" {
			addr = "127.0.0.1:6514"
		}
		cert, err := tls.LoadX509KeyPair(s.TLSCert, s.TLSKey)
		if err != nil {
			return fmt.Errorf("loading tls_cert/tls_key: %w", err)
		}
		in.tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if in.cfg.MaxLine == 0 {
		in.cfg.MaxLine = DefaultMaxLine
	}
	if in.cfg.HandshakeTimeout == 0 {
		in.cfg.HandshakeTimeout = check.Duration(DefaultHandshakeTimeout)
	}
	if in.cfg.MaxConnections == 0 {
		in.cfg.MaxConnections = DefaultMaxConnections
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	in.ln = ln
	in.c = m.register(s.Name, ln.Addr(), in.close)
	m.wg.Add(1)
	go in.accept(ctx)
	m.log.Info("syslog input listening", "input", s.Name, "protocol", s.Protocol, "addr", ln.Addr().String())
	return nil
}

// close stops accepting and ends every connection's reads; the readers
// then flush what they have.
func (in *streamInput) close() {
	in.mu.Lock()
	in.stopped = true
	conns := make([]*streamConn, 0, len(in.conns))
	for c := range in.conns {
		conns = append(conns, c)
	}
	in.mu.Unlock()
	_ = in.ln.Close()
	for _, c := range conns {
		c.stop()
	}
}

func (in *streamInput) accept(ctx context.Context) {
	defer in.m.wg.Done()
	delay := 5 * time.Millisecond
	for {
		conn, err := in.ln.Accept()
		if err != nil {
			if in.m.stopping() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, do not spin.
			in.c.errors.Add(1)
			in.m.log.Warn("accept failed", "input", in.cfg.Name, "err", err)
			time.Sleep(delay)
			delay = min(delay*2, time.Second)
			continue
		}
		delay = 5 * time.Millisecond
		sc := &streamConn{Conn: conn}
		in.mu.Lock()
		if in.stopped {
			in.mu.Unlock()
			_ = conn.Close()
			return
		}
		if len(in.conns) >= in.cfg.MaxConnections {
			in.mu.Unlock()
			in.c.errors.Add(1)
			in.m.log.Warn("connection refused: max_connections reached", "input", in.cfg.Name, "peer", conn.RemoteAddr().String())
			_ = conn.Close()
			continue
		}
		in.conns[sc] = struct{}{}
		in.m.wg.Add(1)
		in.mu.Unlock()
		go in.serve(ctx, sc)
	}
}

func (in *streamInput) serve(ctx context.Context, sc *streamConn) {
	defer in.m.wg.Done()
	defer func() {
		in.mu.Lock()
		delete(in.conns, sc)
		in.mu.Unlock()
		_ = sc.Close()
		in.c.connections.Add(-1)
	}()
	in.c.connections.Add(1)
	peer := sc.RemoteAddr().String()
	var r io.Reader = sc.Conn
	if in.tlsConf != nil {
		// The handshake gets its own deadline so that a client that
		// connects and never speaks only holds this goroutine briefly.
		tc := tls.Server(sc.Conn, in.tlsConf)
		sc.setReadDeadline(time.Now().Add(in.cfg.HandshakeTimeout.D()))
		_ = sc.Conn.SetWriteDeadline(time.Now().Add(in.cfg.HandshakeTimeout.D()))
		if err := tc.HandshakeContext(ctx); err != nil {
			in.c.errors.Add(1)
			in.m.log.Info("tls handshake failed", "input", in.cfg.Name, "peer", peer, "err", err)
			return
		}
		_ = sc.Conn.SetWriteDeadline(time.Time{})
		r = tc
	}
	in.read(ctx, sc, r, peer)
}

// read frames, parses and batches one connection. The reader only reads
// again after a full batch was delivered, so a slow sink fills the
// socket buffers and the sender's TCP window closes: back-pressure.
func (in *streamInput) read(ctx context.Context, sc *streamConn, r io.Reader, peer string) {
	m := in.m
	fr := newFramer(r, in.cfg.MaxLine)
	p := newMsgParser(m.o.Location)
	batch := make([]event.Event, 0, m.o.BatchSize)
	sb := m.newBatch()
	var first time.Time
	// deadline is the read deadline last set here (none yet: the TLS
	// handshake's may be in force): setting it takes a lock and a timer
	// update, so only a change is passed on.
	var deadline time.Time
	deadlineSet := false
	setDeadline := func(t time.Time) {
		if !deadlineSet || !t.Equal(deadline) {
			deadline, deadlineSet = t, true
			sc.setReadDeadline(t)
		}
	}
	flush := func() {
		if len(batch) > 0 {
			m.deliver(ctx, in.cfg.Name, in.c, batch, sb)
			batch = make([]event.Event, 0, m.o.BatchSize)
			sb = m.newBatch()
		}
	}
	defer flush()
	for {
		if len(batch) > 0 {
			setDeadline(first.Add(m.o.FlushEvery))
		} else {
			setDeadline(time.Time{})
		}
		f, err := fr.next()
		if err == nil {
			in.account(f)
			e := p.parse(f.data, f.frameInfo, m.o.Now(), in.kind, in.cfg.Name, peer)
			m.finish(&e, in.c)
			batch = appendEvent(batch, sb, e)
			if len(batch) == 1 {
				first = time.Now()
			}
			// Reading the clock for every event costs more than parsing
			// some of them; every 64 events is close enough.
			if len(batch) >= m.o.BatchSize || (len(batch)%64 == 0 && time.Since(first) >= m.o.FlushEvery) {
				flush()
			}
			continue
		}
		if isTimeout(err) && !sc.isStopped() {
			flush()
			continue
		}
		if !errors.Is(err, io.EOF) && !isTimeout(err) && !errors.Is(err, net.ErrClosed) {
			in.c.errors.Add(1)
			m.log.Info("connection read failed", "input", in.cfg.Name, "peer", peer, "err", err)
		}
		return
	}
}

func (in *streamInput) account(f frame) {
	n := len(f.data)
	if f.origLen > 0 {
		n = f.origLen
		in.c.truncated.Add(1)
	}
	in.c.bytes.Add(uint64(n))
	if strings.HasPrefix(f.note, "octet counting") || strings.HasPrefix(f.note, "incomplete") {
		in.c.errors.Add(1)
		in.m.log.Info("framing error", "input", in.cfg.Name, "problem", f.note)
	}
}
