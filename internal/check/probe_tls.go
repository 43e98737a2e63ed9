package check

import (
	"context"
	"crypto/tls"
	"net"
	"time"
)

func (p *Prober) probeTLS(ctx context.Context, s Spec, res *Result, now time.Time) error {
	t := s.TLS
	if t == nil {
		t = &TLSSpec{}
	}
	addr := withPort(s.Target, "443")
	serverName := t.ServerName
	if serverName == "" {
		serverName = hostOf(addr)
	}
	conn, err := p.dial(ctx, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	defer bindConn(ctx, conn)()

	tc := tls.Client(conn, p.tlsConfig(serverName, boolOr(t.Verify, true)))
	if err := tc.HandshakeContext(ctx); err != nil {
		return inPhase("tls handshake with "+addr, err)
	}
	days := t.ExpiryDays
	if days <= 0 {
		days = defaultExpiryDays
	}
	detail, err := expiry(tc.ConnectionState(), now, days)
	res.Detail = detail
	return err
}

// withPort adds the default port to a target given as a bare host.
func withPort(target, port string) string {
	if _, _, err := net.SplitHostPort(target); err == nil {
		return target
	}
	return net.JoinHostPort(target, port)
}
