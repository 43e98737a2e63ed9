package check

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"
)

// userAgent identifies nocsoc probes to the services they reach.
const userAgent = "nocsoc/1 (+probe)"

// maxBody is how much of an HTTP response body a probe reads: enough for any
// health endpoint, small enough that thousands of concurrent probes stay cheap.
const maxBody = 1 << 20

// defaultExpiryDays is the certificate-expiry threshold of tls checks and of
// smtp checks with STARTTLS.
const defaultExpiryDays = 14

// ProberOptions configures a Prober.
type ProberOptions struct {
	// Logger receives debug logs about probes; nil discards them.
	Logger *slog.Logger
	// Resolver is the default DNS server for dns checks (host:port); ""
	// means the first nameserver in /etc/resolv.conf.
	Resolver string
	// RootCAs verifies the certificates of http, tls and smtp targets; nil
	// means the system's roots. Set it to trust an internal CA.
	RootCAs *x509.CertPool
}

// Prober runs probes. It is safe for concurrent use and shares its HTTP
// transports between probes (one per TLS-verify setting).
type Prober struct {
	log     *slog.Logger
	rootCAs *x509.CertPool
	dialer  net.Dialer

	// verifying and insecure are the shared HTTP transports for
	// tls_verify true and false.
	verifying *http.Transport
	insecure  *http.Transport

	// resolver is the default DNS server; resolvConf is read when it is
	// empty (a field so tests can point it elsewhere).
	resolver   string
	resolvConf string
	sysMu      sync.Mutex
	sysServer  string
	sysErr     error
	sysLoaded  time.Time

	// regexps caches compiled body_regex patterns: the scheduler probes the
	// same few specs over and over, and compiling per probe is wasteful.
	reMu    sync.Mutex
	regexps map[string]*regexp.Regexp
}

// NewProber returns a Prober ready for use.
func NewProber(opts ProberOptions) *Prober {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Prober{
		log:        log.With("component", "probe"),
		rootCAs:    opts.RootCAs,
		resolver:   opts.Resolver,
		resolvConf: "/etc/resolv.conf",
		regexps:    make(map[string]*regexp.Regexp),
	}
	p.verifying = p.newTransport(true)
	p.insecure = p.newTransport(false)
	return p
}

// Probe runs one check once. It never panics and always returns a Result with
// Check, Time (start) and Duration set; on failure OK is false and Error says
// why. The probe is bounded by s.Timeout; cancelling ctx aborts it.
func (p *Prober) Probe(ctx context.Context, s Spec) (res Result) {
	start := time.Now()
	res = Result{Check: s.Name, Time: start}
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("probe panicked", "check", s.Name, "type", s.Type, "panic", r, "stack", string(debug.Stack()))
			res = Result{Check: s.Name, Time: start, Error: fmt.Sprintf("internal error: probe panicked: %v", r)}
		}
		res.Duration = time.Since(start)
		if res.OK {
			res.Error = ""
		}
	}()

	if s.Type == TypePush {
		res.Error = "push checks are not probed"
		return res
	}
	timeout := s.Timeout.D()
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var err error
	switch s.Type {
	case TypeHTTP:
		err = p.probeHTTP(pctx, s, &res)
	case TypeTCP:
		err = p.probeTCP(pctx, s, &res)
	case TypeICMP:
		err = p.probeICMP(pctx, s, &res)
	case TypeDNS:
		err = p.probeDNS(pctx, s, &res)
	case TypeTLS:
		err = p.probeTLS(pctx, s, &res, start)
	case TypeSMTP:
		err = p.probeSMTP(pctx, s, &res, start)
	case TypeMailPosture:
		err = p.probeMailPosture(pctx, s, &res) // probe_mail.go
	default:
		err = fmt.Errorf("unknown check type %q", s.Type)
	}
	if err != nil {
		res.OK = false
		res.Error = describe(ctx, timeout, err)
		p.log.Debug("probe failed", "check", s.Name, "type", s.Type, "error", res.Error)
		return res
	}
	res.OK = true
	return res
}

// describe turns an error into the short text an operator reads on the
// board. Go's network errors repeat themselves ("dial tcp 1.2.3.4:80:
// connect: connection refused"); the probes wrap them as "connect ADDR: %w"
// and describe keeps that prefix and the root cause only.
func describe(parent context.Context, timeout time.Duration, err error) string {
	var prefix string
	var pe *phaseError
	if errors.As(err, &pe) {
		prefix = pe.phase + ": "
		err = pe.err
	}
	switch {
	case parent.Err() != nil:
		return prefix + "probe canceled"
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return prefix + "timeout after " + timeout.String()
	}
	return prefix + rootCause(err)
}

// phaseError names the step of a probe that failed ("connect 10.0.0.1:80").
type phaseError struct {
	phase string
	err   error
}

func (e *phaseError) Error() string { return e.phase + ": " + e.err.Error() }
func (e *phaseError) Unwrap() error { return e.err }

// inPhase wraps err with the step it happened in.
func inPhase(phase string, err error) error { return &phaseError{phase: phase, err: err} }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// rootCause strips Go's layered network error text down to what matters.
// It looks at the error itself, not deep into its chain, so context a probe
// wrapped around an error ("icmp needs root ...: %w") is kept.
func rootCause(err error) string {
	switch e := err.(type) {
	case *tls.CertificateVerificationError:
		return "certificate verification failed: " + strings.TrimPrefix(e.Err.Error(), "x509: ")
	case *net.DNSError:
		return "lookup " + e.Name + ": " + e.Err
	case *net.OpError:
		if e.Err == nil {
			return e.Error()
		}
		var dnsErr *net.DNSError
		if errors.As(e.Err, &dnsErr) {
			return "lookup " + dnsErr.Name + ": " + dnsErr.Err
		}
		var errno syscall.Errno
		if errors.As(e.Err, &errno) {
			return errno.Error()
		}
		return e.Err.Error()
	}
	return err.Error()
}

// dial opens a TCP connection and reports failure as "connect ADDR: ...".
func (p *Prober) dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := p.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, inPhase("connect "+addr, err)
	}
	return c, nil
}

// bindConn makes ctx's deadline and cancellation apply to every read and
// write on c. The returned stop function must be called when done.
func bindConn(ctx context.Context, c net.Conn) (stop func() bool) {
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	// A deadline in the past unblocks pending I/O at once on cancellation.
	return context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
}

// tlsConfig is the client TLS configuration for a target.
func (p *Prober) tlsConfig(serverName string, verify bool) *tls.Config {
	return &tls.Config{
		ServerName:         serverName,
		RootCAs:            p.rootCAs,
		InsecureSkipVerify: !verify, //nolint:gosec // the check's own tls_verify setting asks for it
		// TLS 1.0 is accepted so an old service reads as up; its expiry and
		// chain are still checked.
		MinVersion: tls.VersionTLS10,
	}
}

// expiry checks the leaf certificate against the threshold and returns the
// Detail text ("expires 2027-01-02T15:04:05Z (in 36 days), issuer CN=...").
func expiry(cs tls.ConnectionState, now time.Time, thresholdDays int) (string, error) {
	if len(cs.PeerCertificates) == 0 {
		return "", errors.New("server sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	left := leaf.NotAfter.Sub(now)
	days := int(left / (24 * time.Hour))
	var when string
	if left < 0 {
		when = fmt.Sprintf("expired %d days ago", -days)
	} else {
		when = fmt.Sprintf("in %d days", days)
	}
	detail := fmt.Sprintf("expires %s (%s), issuer %s", leaf.NotAfter.UTC().Format(time.RFC3339), when, leaf.Issuer.String())
	switch {
	case left < 0:
		return detail, fmt.Errorf("certificate expired %d days ago (%s)", -days, leaf.NotAfter.UTC().Format(time.RFC3339))
	case left < time.Duration(thresholdDays)*24*time.Hour:
		return detail, fmt.Errorf("certificate expires in %d days (threshold %d)", days, thresholdDays)
	}
	return detail, nil
}

// boolOr returns *b, or def when b is nil.
func boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// hostOf returns the host part of a host:port target, or the target itself.
func hostOf(target string) string {
	if h, _, err := net.SplitHostPort(target); err == nil {
		return h
	}
	return target
}

// quote shortens and quotes received data for an error message.
func quote(b []byte) string {
	const limit = 64
	if len(b) > limit {
		return fmt.Sprintf("%q…", b[:limit])
	}
	return fmt.Sprintf("%q", b)
}
