package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// sendEmail delivers m over SMTP: STARTTLS (required unless turned off) or
// implicit TLS on port 465, AUTH PLAIN or LOGIN when a username is set
// (only ever over TLS), then one message to every recipient.
func (s *Sender) sendEmail(ctx context.Context, ch Channel, m Message) error {
	e := ch.Email
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.smtpTimeout)
		defer cancel()
	}
	addr := net.JoinHostPort(strings.Trim(e.Host, "[]"), strconv.Itoa(e.Port))
	tlsConf := &tls.Config{
		ServerName:         strings.Trim(e.Host, "[]"),
		RootCAs:            s.rootCAs,
		InsecureSkipVerify: !e.tlsVerify(), // the operator's explicit choice (tls_verify: false)
		MinVersion:         tls.VersionTLS12,
	}
	conn, err := s.dial(ctx, addr)
	if err != nil {
		return fmt.Errorf("email: %w", err)
	}
	// net/smtp has no context support: the deadline bounds every read and
	// write, and closing the connection on cancellation unblocks them.
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if e.implicitTLS() {
		tc := tls.Client(conn, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return fmt.Errorf("email: TLS with %s: %w", addr, err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, tlsConf.ServerName)
	if err != nil {
		conn.Close()
		return smtpErr("greeting", err)
	}
	defer c.Close()
	if err := c.Hello(heloName()); err != nil {
		return smtpErr("EHLO", err)
	}
	secure := e.implicitTLS()
	if !secure && e.startTLS() {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return permanent(fmt.Errorf("email: %s does not offer STARTTLS (set starttls: false to send unencrypted)", addr))
		}
		if err := c.StartTLS(tlsConf); err != nil {
			return smtpErr("STARTTLS", err)
		}
		secure = true
	}
	if e.Username != "" {
		if !secure {
			return permanent(errors.New("email: refusing to send credentials without TLS"))
		}
		_, mechs := c.Extension("AUTH")
		var auth smtp.Auth
		switch fields := strings.Fields(strings.ToUpper(mechs)); {
		case slices.Contains(fields, "PLAIN"):
			auth = smtp.PlainAuth("", e.Username, e.Password, tlsConf.ServerName)
		case slices.Contains(fields, "LOGIN"):
			auth = &loginAuth{user: e.Username, pass: e.Password}
		default:
			return permanent(fmt.Errorf("email: %s offers no AUTH PLAIN or LOGIN (offers %q)", addr, mechs))
		}
		if err := c.Auth(auth); err != nil {
			return smtpErr("AUTH", err)
		}
	}
	from, _ := mail.ParseAddress(e.From)
	to := recipients(e.To, m.Recipients)
	if err := c.Mail(from.Address); err != nil {
		return smtpErr("MAIL FROM", err)
	}
	for _, r := range to {
		if err := c.Rcpt(r.Address); err != nil {
			return smtpErr("RCPT TO <"+r.Address+">", err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return smtpErr("DATA", err)
	}
	if _, err := w.Write(s.buildEmail(from, to, m)); err != nil {
		return smtpErr("DATA", err)
	}
	if err := w.Close(); err != nil {
		return smtpErr("end of DATA", err)
	}
	if err := c.Quit(); err != nil {
		// The message is accepted once DATA is acknowledged; a failed QUIT
		// does not undo that.
		s.log.Debug("smtp QUIT failed", "host", e.Host, "err", err)
	}
	return nil
}

// smtpErr wraps an SMTP failure; 5xx replies are permanent (RFC 5321).
func smtpErr(step string, err error) error {
	err = fmt.Errorf("email: %s: %w", step, err)
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 {
		return permanent(err)
	}
	return err
}

// recipients returns the channel's addresses plus the message recipients
// that are email addresses (on-call users paged through this channel),
// without duplicates.
func recipients(to, extra []string) []*mail.Address {
	var out []*mail.Address
	seen := map[string]bool{}
	for _, a := range append(slices.Clip(to), extra...) {
		addr, err := mail.ParseAddress(a)
		if err != nil || !strings.Contains(addr.Address, "@") {
			continue // a user name rather than an address
		}
		k := strings.ToLower(addr.Address)
		if !seen[k] {
			seen[k] = true
			out = append(out, addr)
		}
	}
	return out
}

// buildEmail renders the RFC 5322 message: headers, then the templated
// body as quoted-printable UTF-8 text with CRLF line ends.
func (s *Sender) buildEmail(from *mail.Address, to []*mail.Address, m Message) []byte {
	subject, text := s.tmpl.Render(m)
	var b bytes.Buffer
	h := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	h("From", from.String())
	tos := make([]string, len(to))
	for i, a := range to {
		tos[i] = a.String()
	}
	h("To", strings.Join(tos, ", "))
	h("Subject", mime.QEncoding.Encode("utf-8", subject))
	h("Date", s.now().Format(time.RFC1123Z))
	h("Message-ID", messageID(from.Address, m))
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "quoted-printable")
	// Auto-Submitted keeps vacation responders from replying (RFC 3834).
	h("Auto-Submitted", "auto-generated")
	h("X-Nocsoc-Event", m.Event)
	h("X-Nocsoc-Incident", strconv.FormatInt(m.IncidentID, 10))
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(text))
	qp.Close()
	return b.Bytes()
}

func messageID(from string, m Message) string {
	domain := "nocsoc.localhost"
	if _, d, ok := strings.Cut(from, "@"); ok && d != "" {
		domain = d
	}
	var r [8]byte
	rand.Read(r[:])
	return fmt.Sprintf("<nocsoc.%d.%s.%s@%s>", m.IncidentID, m.Event, hex.EncodeToString(r[:]), domain)
}

// heloName is the name nocsoc gives in EHLO: this host's name when it looks
// like one, else "localhost".
func heloName() string {
	h, err := os.Hostname()
	if err != nil || h == "" || strings.ContainsAny(h, " \r\n") {
		return "localhost"
	}
	return h
}

// loginAuth implements AUTH LOGIN (draft-murchison-sasl-login), which some
// servers (Exchange, older Office 365 tenants) offer instead of PLAIN.
type loginAuth struct{ user, pass string }

func (a *loginAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS {
		return "", nil, errors.New("AUTH LOGIN needs TLS")
	}
	return "LOGIN", nil, nil
}

func (a *loginAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	switch p := strings.ToLower(strings.TrimSpace(string(fromServer))); {
	case strings.HasPrefix(p, "user"):
		return []byte(a.user), nil
	case strings.HasPrefix(p, "pass"):
		return []byte(a.pass), nil
	}
	return nil, fmt.Errorf("AUTH LOGIN: unexpected challenge %q", fromServer)
}
