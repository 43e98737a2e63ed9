package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/nocsoc/nocsoc/internal/event"
)

type datagram struct {
	data    []byte
	origLen int
	peer    netip.AddrPort
}

func (m *Manager) startUDP(ctx context.Context, s SyslogInput) error {
	addr := s.Listen
	if addr == "" {
		addr = "127.0.0.1:5514"
	}
	if s.MaxLine == 0 {
		s.MaxLine = DefaultMaxLine
	}
	if s.QueueSize == 0 {
		s.QueueSize = DefaultUDPQueue
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	// A larger socket buffer absorbs bursts while the parser catches up;
	// the kernel may cap it, which is fine.
	_ = conn.SetReadBuffer(4 << 20)
	queue := make(chan datagram, s.QueueSize)
	c := m.register(s.Name, conn.LocalAddr(), func() { _ = conn.Close() })
	m.wg.Add(2)
	go m.readUDP(s, conn, queue, c)
	go m.parseUDP(ctx, s, queue, c)
	m.log.Info("syslog input listening", "input", s.Name, "protocol", "udp", "addr", conn.LocalAddr().String())
	return nil
}

// readUDP only copies datagrams into the queue, so that the socket is
// drained as fast as possible; when the parser falls behind, datagrams are
// dropped here and counted instead of blocking the socket (the kernel
// would drop them anyway, without telling anyone).
func (m *Manager) readUDP(s SyslogInput, conn *net.UDPConn, queue chan<- datagram, c *counters) {
	defer m.wg.Done()
	defer close(queue)
	buf := make([]byte, 65536)
	for {
		n, peer, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if m.stopping() || errors.Is(err, net.ErrClosed) {
				return
			}
			c.errors.Add(1)
			m.log.Warn("udp read failed", "input", s.Name, "err", err)
			continue
		}
		c.bytes.Add(uint64(n))
		d := bytes.TrimRight(buf[:n], "\r\n")
		dg := datagram{peer: peer}
		if len(d) > s.MaxLine {
			dg.origLen = len(d)
			d = d[:s.MaxLine]
		}
		if len(d) == 0 {
			continue
		}
		dg.data = append([]byte(nil), d...)
		select {
		case queue <- dg:
		default:
			c.udpDrops.Add(1)
		}
	}
}

func (m *Manager) parseUDP(ctx context.Context, s SyslogInput, queue <-chan datagram, c *counters) {
	defer m.wg.Done()
	p := newMsgParser(m.o.Location)
	batch := make([]event.Event, 0, m.o.BatchSize)
	sb := m.newBatch()
	flush := func() {
		if len(batch) > 0 {
			m.deliver(ctx, s.Name, c, batch, sb)
			batch = make([]event.Event, 0, m.o.BatchSize)
			sb = m.newBatch()
		}
	}
	t := time.NewTicker(m.o.FlushEvery)
	defer t.Stop()
	for {
		select {
		case dg, ok := <-queue:
			if !ok {
				flush()
				return
			}
			fi := frameInfo{}
			if dg.origLen > 0 {
				fi.origLen, fi.maxLine = dg.origLen, s.MaxLine
				c.truncated.Add(1)
			}
			e := p.parse(dg.data, fi, m.o.Now(), InputSyslogUDP, s.Name, dg.peer.String())
			m.finish(&e, c)
			batch = appendEvent(batch, sb, e)
			if len(batch) >= m.o.BatchSize {
				flush()
			}
		case <-t.C:
			flush()
		}
	}
}
