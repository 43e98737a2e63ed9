package check

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/textproto"
	"strings"
	"time"
)

// defaultEHLO is the name a smtp check greets the server with.
const defaultEHLO = "nocsoc.localhost"

func (p *Prober) probeSMTP(ctx context.Context, s Spec, res *Result, now time.Time) error {
	sm := s.SMTP
	if sm == nil {
		sm = &SMTPSpec{}
	}
	addr := withPort(s.Target, "25")
	conn, err := p.dial(ctx, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	defer bindConn(ctx, conn)()

	text := textproto.NewConn(conn)
	code, banner, err := text.ReadResponse(220)
	res.StatusCode = code
	res.Detail = strings.ReplaceAll(banner, "\n", " ")
	if err != nil {
		return inPhase("banner", err)
	}
	if sm.ExpectBanner != "" && !strings.Contains(banner, sm.ExpectBanner) {
		return fmt.Errorf("banner %q does not contain %q", res.Detail, sm.ExpectBanner)
	}
	name := sm.EHLO
	if name == "" {
		name = defaultEHLO
	}
	ext, err := ehlo(text, name)
	if err != nil {
		return err
	}

	if sm.StartTLS {
		if !ext["STARTTLS"] {
			return fmt.Errorf("server does not offer STARTTLS")
		}
		if _, err := cmd(text, 220, "STARTTLS"); err != nil {
			return inPhase("STARTTLS", err)
		}
		tc := tls.Client(conn, p.tlsConfig(hostOf(addr), boolOr(sm.TLSVerify, true)))
		if err := tc.HandshakeContext(ctx); err != nil {
			return inPhase("tls handshake with "+addr, err)
		}
		days := sm.ExpiryDays
		if days <= 0 {
			days = defaultExpiryDays
		}
		if _, err := expiry(tc.ConnectionState(), now, days); err != nil {
			return err
		}
		// The session restarts after STARTTLS: greet again, as a real
		// client would, so a server that breaks here is caught.
		text = textproto.NewConn(tc)
		if _, err := ehlo(text, name); err != nil {
			return fmt.Errorf("after STARTTLS: %w", err)
		}
	}
	// A server that hangs up on QUIT has still done its job; only the
	// earlier steps decide the result.
	_, _ = cmd(text, 221, "QUIT")
	return nil
}

// ehlo greets the server and returns the extensions it announces.
func ehlo(text *textproto.Conn, name string) (map[string]bool, error) {
	msg, err := cmd(text, 250, "EHLO "+name)
	if err != nil {
		return nil, inPhase("EHLO", err)
	}
	ext := make(map[string]bool)
	lines := strings.Split(msg, "\n")
	for _, l := range lines[1:] { // the first line is the server's greeting
		kw, _, _ := strings.Cut(l, " ")
		ext[strings.ToUpper(kw)] = true
	}
	return ext, nil
}

// cmd sends one command and reads the reply, which must have code want.
func cmd(text *textproto.Conn, want int, line string) (string, error) {
	id, err := text.Cmd("%s", line)
	if err != nil {
		return "", err
	}
	text.StartResponse(id)
	defer text.EndResponse(id)
	_, msg, err := text.ReadResponse(want)
	return msg, err
}
