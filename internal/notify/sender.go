package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// SenderOptions configures a Sender.
type SenderOptions struct {
	// HTTPClient sends webhook, slack and teams requests. Default: a client
	// with a 10s timeout that trusts RootCAs (or the system roots).
	HTTPClient *http.Client
	// RootCAs verifies SMTP STARTTLS and, for the default HTTP client,
	// HTTPS servers; nil means the system roots.
	RootCAs *x509.CertPool
	// Templates renders subjects and bodies; default DefaultTemplates().
	Templates *Templates
	Logger    *slog.Logger
	// Now is the clock of signature timestamps and Date headers.
	Now func() time.Time
	// SMTPTimeout bounds one email delivery when ctx has no deadline;
	// default 30s.
	SMTPTimeout time.Duration
}

// Sender sends one message through one channel, once. It is safe for
// concurrent use.
type Sender struct {
	client      *http.Client
	rootCAs     *x509.CertPool
	tmpl        *Templates
	log         *slog.Logger
	now         func() time.Time
	smtpTimeout time.Duration
}

// NewSender returns a Sender.
func NewSender(o SenderOptions) *Sender {
	s := &Sender{client: o.HTTPClient, rootCAs: o.RootCAs, tmpl: o.Templates, log: o.Logger, now: o.Now, smtpTimeout: o.SMTPTimeout}
	if s.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// Enough idle connections for every dispatcher worker to keep its
		// own, so that a burst of pages does not pay a handshake each.
		tr.MaxIdleConnsPerHost = 32
		if o.RootCAs != nil {
			tr.TLSClientConfig = &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12}
		}
		s.client = &http.Client{Timeout: 10 * time.Second, Transport: tr}
	}
	if s.tmpl == nil {
		s.tmpl = DefaultTemplates()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "notify")
	if s.now == nil {
		s.now = time.Now
	}
	if s.smtpTimeout <= 0 {
		s.smtpTimeout = 30 * time.Second
	}
	return s
}

// Send delivers m through ch once. It returns the HTTP status of webhook,
// slack and teams channels (0 for email or when no response came) and an
// error when the message was not accepted. Errors that retrying cannot fix
// (an invalid channel, most 4xx replies, SMTP 5xx replies) satisfy
// IsPermanent.
func (s *Sender) Send(ctx context.Context, ch Channel, m Message) (httpStatus int, err error) {
	if err := ch.Validate(); err != nil {
		return 0, permanent(fmt.Errorf("notify: channel %q: %w", ch.Name, err))
	}
	switch ch.Type {
	case TypeWebhook:
		body, err := webhookPayload(m)
		if err != nil {
			return 0, permanent(fmt.Errorf("webhook: %w", err))
		}
		return s.post(ctx, "webhook", ch, m, body)
	case TypeSlack:
		body, err := slackPayload(m, s.tmpl)
		if err != nil {
			return 0, permanent(fmt.Errorf("slack: %w", err))
		}
		return s.post(ctx, "slack", ch, m, body)
	case TypeTeams:
		body, err := teamsPayload(m, s.tmpl)
		if err != nil {
			return 0, permanent(fmt.Errorf("teams: %w", err))
		}
		return s.post(ctx, "teams", ch, m, body)
	case TypeEmail:
		return 0, s.sendEmail(ctx, ch, m)
	}
	return 0, permanent(fmt.Errorf("notify: unknown channel type %q", ch.Type))
}

// post sends one JSON body. Webhook channels get the nocsoc headers and,
// with a secret, the signature.
func (s *Sender) post(ctx context.Context, kind string, ch Channel, m Message, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ch.URL, bytes.NewReader(body))
	if err != nil {
		return 0, permanent(fmt.Errorf("%s: %w", kind, err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "nocsoc-notify/1")
	if ch.Type == TypeWebhook {
		ts := strconv.FormatInt(s.now().Unix(), 10)
		req.Header.Set("X-Nocsoc-Event", m.Event)
		req.Header.Set("X-Nocsoc-Timestamp", ts)
		if ch.Secret != "" {
			req.Header.Set("X-Nocsoc-Signature", Sign(ch.Secret, ts, body))
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// The URL may carry a token (Slack and Teams URLs do): report the
		// cause without it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, fmt.Errorf("%s: POST %s: %w", kind, redactURL(ch.URL), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// Draining lets the connection be reused.
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return resp.StatusCode, nil
	}
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	he := &HTTPError{Kind: kind, Status: resp.StatusCode, Body: strings.TrimSpace(string(head))}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if secs, err := strconv.Atoi(ra); err == nil && secs > 0 {
			he.RetryAfter = time.Duration(secs) * time.Second
		} else if t, err := http.ParseTime(ra); err == nil {
			he.RetryAfter = max(0, t.Sub(s.now()))
		}
	}
	return resp.StatusCode, he
}

// redactURL keeps scheme, host and port: webhook paths and queries of chat
// services are credentials.
func redactURL(raw string) string {
	i := strings.Index(raw, "://")
	if i < 0 {
		return "<url>"
	}
	rest := raw[i+3:]
	if j := strings.IndexAny(rest, "/?#"); j >= 0 {
		rest = rest[:j]
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = rest[at+1:]
	}
	return raw[:i+3] + rest + "/…"
}

// HTTPError is a non-2xx reply from a webhook, Slack or Teams endpoint.
type HTTPError struct {
	Kind   string
	Status int
	// Body is the first 200 bytes of the reply.
	Body string
	// RetryAfter is the delay the server asked for (429 and 503), or 0.
	RetryAfter time.Duration
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("%s: HTTP %d %s", e.Kind, e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Permanent reports whether retrying cannot help: a 4xx other than 408
// (timeout), 425 (too early) and 429 (rate limited) means the request
// itself is wrong or the endpoint is gone.
func (e *HTTPError) Permanent() bool {
	return e.Status >= 400 && e.Status < 500 && e.Status != 408 && e.Status != 425 && e.Status != 429
}

type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() error   { return e.err }
func (e *permanentError) Permanent() bool { return true }

func permanent(err error) error { return &permanentError{err} }

// IsPermanent reports whether err says that sending the same message again
// cannot succeed, so the dispatcher dead-letters it at once.
func IsPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// dial opens the TCP connection of one email delivery.
func (s *Sender) dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}
