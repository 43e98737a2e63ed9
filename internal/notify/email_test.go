package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// mailbox is an in-process SMTP server (go-smtp) on 127.0.0.1 that keeps
// what it receives.
type mailbox struct {
	host string
	port int

	mu    sync.Mutex
	user  string // authenticated user of the last session
	from  string
	rcpts []string
	data  []byte
	tls   bool
}

func newMailbox(t *testing.T, cert *tls.Certificate, requireAuth bool) *mailbox {
	t.Helper()
	mb := &mailbox{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &mailSession{mb: mb, conn: c, requireAuth: requireAuth}, nil
	}))
	srv.Domain = "mx.test"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	mb.host = "127.0.0.1"
	mb.port = l.Addr().(*net.TCPAddr).Port
	return mb
}

type mailSession struct {
	mb          *mailbox
	conn        *smtp.Conn
	requireAuth bool
	user        string
}

func (s *mailSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *mailSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != "nocsoc" || password != "pa55" {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		s.user = username
		return nil
	}), nil
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.requireAuth && s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.mb.mu.Lock()
	defer s.mb.mu.Unlock()
	_, s.mb.tls = s.conn.TLSConnectionState()
	s.mb.from, s.mb.rcpts, s.mb.user = from, nil, s.user
	return nil
}

func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.mb.mu.Lock()
	defer s.mb.mu.Unlock()
	s.mb.rcpts = append(s.mb.rcpts, to)
	return nil
}

func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.mb.mu.Lock()
	defer s.mb.mu.Unlock()
	s.mb.data = b
	return err
}

func (s *mailSession) Reset()        {}
func (s *mailSession) Logout() error { return nil }

func (mb *mailbox) settings(f func(*EmailSettings)) *EmailSettings {
	e := &EmailSettings{To: []string{"Ops <ops@example.com>"}, From: "nocsoc <nocsoc@example.com>", Host: mb.host, Port: mb.port}
	if f != nil {
		f(e)
	}
	return e
}

func TestSendEmailSTARTTLSAuth(t *testing.T) {
	cert, pool := testCert(t)
	mb := newMailbox(t, &cert, true)
	s := NewSender(SenderOptions{RootCAs: pool, Now: fixedNow})
	m := sampleMessage()
	m.Title = "db is down — ünïcode"
	m.Recipients = []string{"alice", "bob@example.com", "OPS@example.com"}
	ch := Channel{Name: "mail", Type: TypeEmail, Email: mb.settings(func(e *EmailSettings) { e.Username, e.Password = "nocsoc", "pa55" })}
	if _, err := s.Send(context.Background(), ch, m); err != nil {
		t.Fatal(err)
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if !mb.tls || mb.user != "nocsoc" || mb.from != "nocsoc@example.com" {
		t.Errorf("session: tls=%v user=%q from=%q", mb.tls, mb.user, mb.from)
	}
	if got := strings.Join(mb.rcpts, ","); got != "ops@example.com,bob@example.com" {
		t.Errorf("RCPT TO = %s", got)
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(mb.data)))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, mb.data)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "[nocsoc] [CRITICAL] #42 db is down — ünïcode (triggered)"; subject != want {
		t.Errorf("Subject = %q, want %q", subject, want)
	}
	if d, err := msg.Header.Date(); err != nil || !d.Equal(fixedNow()) {
		t.Errorf("Date = %v, %v", d, err)
	}
	if from, err := mail.ParseAddress(msg.Header.Get("From")); err != nil || from.Address != "nocsoc@example.com" || from.Name != "nocsoc" {
		t.Errorf("From = %q", msg.Header.Get("From"))
	}
	if to, err := msg.Header.AddressList("To"); err != nil || len(to) != 2 || to[0].Address != "ops@example.com" || to[1].Address != "bob@example.com" {
		t.Errorf("To = %q", msg.Header.Get("To"))
	}
	if id := msg.Header.Get("Message-ID"); !strings.HasPrefix(id, "<nocsoc.42.triggered.") || !strings.HasSuffix(id, "@example.com>") {
		t.Errorf("Message-ID = %q", id)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "text/plain" || params["charset"] != "utf-8" || msg.Header.Get("MIME-Version") != "1.0" {
		t.Errorf("Content-Type = %q", msg.Header.Get("Content-Type"))
	}
	if msg.Header.Get("X-Nocsoc-Incident") != "42" || msg.Header.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("headers: %v", msg.Header)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Incident #42 was triggered: db is down — ünïcode", "Open the incident: https://nocsoc.example/incidents/42", "Notified: alice, bob@example.com"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
}

func TestSendEmailFailures(t *testing.T) {
	cert, pool := testCert(t)
	tlsBox := newMailbox(t, &cert, true)
	plainBox := newMailbox(t, nil, false)

	tests := []struct {
		name      string
		opts      SenderOptions
		ch        *EmailSettings
		want      string
		permanent bool
	}{
		{name: "STARTTLS not offered", opts: SenderOptions{RootCAs: pool}, ch: plainBox.settings(nil),
			want: "does not offer STARTTLS (set starttls: false", permanent: true},
		{name: "untrusted certificate", opts: SenderOptions{}, ch: tlsBox.settings(func(e *EmailSettings) { e.Username, e.Password = "nocsoc", "pa55" }),
			want: "certificate signed by unknown authority"},
		{name: "bad password", opts: SenderOptions{RootCAs: pool}, ch: tlsBox.settings(func(e *EmailSettings) { e.Username, e.Password = "nocsoc", "wrong" }),
			want: "email: AUTH: 535", permanent: true},
		{name: "auth required", opts: SenderOptions{RootCAs: pool}, ch: tlsBox.settings(nil),
			want: "email: MAIL FROM: 502", permanent: true},
		{name: "refused", opts: SenderOptions{}, ch: plainBox.settings(func(e *EmailSettings) { e.Port = closedPort(t) }),
			want: "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSender(tt.opts).Send(context.Background(), Channel{Name: "mail", Type: TypeEmail, Email: tt.ch}, sampleMessage())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if IsPermanent(err) != tt.permanent {
				t.Errorf("IsPermanent = %v", IsPermanent(err))
			}
		})
	}

	t.Run("verify off", func(t *testing.T) {
		ch := Channel{Name: "mail", Type: TypeEmail, Email: tlsBox.settings(func(e *EmailSettings) {
			e.Username, e.Password, e.TLSVerify = "nocsoc", "pa55", ptr(false)
		})}
		if _, err := NewSender(SenderOptions{}).Send(context.Background(), ch, sampleMessage()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("starttls false", func(t *testing.T) {
		ch := Channel{Name: "mail", Type: TypeEmail, Email: plainBox.settings(func(e *EmailSettings) { e.StartTLS = ptr(false) })}
		if _, err := NewSender(SenderOptions{}).Send(context.Background(), ch, sampleMessage()); err != nil {
			t.Fatal(err)
		}
		plainBox.mu.Lock()
		defer plainBox.mu.Unlock()
		if plainBox.tls || !strings.Contains(string(plainBox.data), "Subject: [nocsoc] [CRITICAL] #42 db is down (triggered)") {
			t.Errorf("tls=%v data:\n%s", plainBox.tls, plainBox.data)
		}
	})
	t.Run("context deadline", func(t *testing.T) {
		// A server that accepts but never greets: the deadline ends the wait.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			c, err := l.Accept()
			if err == nil {
				io.Copy(io.Discard, c)
				c.Close()
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		port := l.Addr().(*net.TCPAddr).Port
		_, err = NewSender(SenderOptions{}).Send(ctx, Channel{Name: "mail", Type: TypeEmail, Email: plainBox.settings(func(e *EmailSettings) { e.Port = port })}, sampleMessage())
		var ne net.Error
		if err == nil || !(errors.As(err, &ne) && ne.Timeout() || strings.Contains(err.Error(), "closed")) {
			t.Errorf("got %v", err)
		}
	})
}

func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(strings.TrimPrefix(l.Addr().String(), "127.0.0.1:"))
	l.Close()
	return port
}
