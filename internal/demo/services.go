package demo

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The database outage cycle, in ticks: the first outage comes soon so a
// newcomer sees it, then the database is down for outageTicks out of every
// cycleTicks.
const (
	firstOutageTicks = 30
	outageTicks      = 120
	cycleTicks       = 360
)

// services are the simulated systems the demo's checks watch.
type services struct {
	log   *slog.Logger
	addrs map[string]string // service name → host:port
	pg    *postgres

	mu      sync.Mutex
	servers []*http.Server
	lns     []net.Listener
}

func startServices(ctx context.Context, tick time.Duration, now time.Time, log *slog.Logger, wg *sync.WaitGroup) (*services, error) {
	s := &services{log: log, addrs: map[string]string{}}
	ok := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"status":"ok","service":%q}`, body)
		}
	}
	pg, err := startPostgres(log, wg)
	if err != nil {
		return nil, err
	}
	s.pg = pg
	s.addrs["postgres"] = pg.addr
	// shop-api and payments really use the database: each health request
	// opens a connection to it, so when it goes down they fail too, and
	// the root-cause view attributes their failure to it.
	needsDB := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			c, err := net.DialTimeout("tcp", pg.addr, 500*time.Millisecond)
			if err != nil {
				http.Error(w, `{"status":"error","error":"database unavailable"}`, http.StatusServiceUnavailable)
				return
			}
			c.Close()
			ok(name)(w, r)
		}
	}
	var flips atomic.Uint64
	handlers := []struct {
		name string
		h    http.Handler
	}{
		{"shop-web", ok("shop-web")},
		{"shop-api", needsDB("shop-api")},
		{"payments", needsDB("payments")},
		// The cache answers 500 and 200 in turn: every probe changes its
		// state, so flap detection catches it within a few intervals. It
		// starts with a failure so that flapping begins (at the fifth
		// change) while its alert is open: the incident stays open for
		// the demo operator to hand over to the SOC.
		{"flaky-cache", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if flips.Add(1)%2 == 1 {
				http.Error(w, `{"status":"error","error":"evicting"}`, http.StatusInternalServerError)
				return
			}
			ok("flaky-cache")(w, r)
		})},
		// Staging is mid-deploy and failing, but it is in a maintenance
		// window, so it pages nobody.
		{"shop-web-staging", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"status":"deploying"}`, http.StatusServiceUnavailable)
		})},
	}
	for _, h := range handlers {
		ln, err := listenLoopback()
		if err != nil {
			s.close()
			return nil, err
		}
		s.serve(h.name, ln, h.h, wg)
	}
	// billing serves HTTPS with a certificate that expires in 10 days, so
	// its tls check fails on expiry.
	cert, err := expiringCert(now, 10*24*time.Hour)
	if err != nil {
		s.close()
		return nil, err
	}
	ln, err := listenLoopback()
	if err != nil {
		s.close()
		return nil, err
	}
	s.serve("billing", tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), ok("billing"), wg)
	s.addrs["billing"] = ln.Addr().String()

	mail, err := listenLoopback()
	if err != nil {
		s.close()
		return nil, err
	}
	s.track(mail)
	s.addrs["mail-relay"] = mail.Addr().String()
	wg.Add(1)
	go func() {
		defer wg.Done()
		serveSMTP(mail)
	}()

	wg.Add(1)
	go func() {
		defer wg.Done()
		pg.cycle(ctx, tick)
	}()
	return s, nil
}

func (s *services) serve(name string, ln net.Listener, h http.Handler, wg *sync.WaitGroup) {
	srv := newServer(h, s.log)
	s.mu.Lock()
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	s.addrs[name] = ln.Addr().String()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("simulated service stopped", "service", name, "err", err)
		}
	}()
}

func (s *services) track(ln net.Listener) {
	s.mu.Lock()
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
}

func (s *services) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, srv := range s.servers {
		_ = srv.Close()
	}
	for _, ln := range s.lns {
		_ = ln.Close()
	}
	if s.pg != nil {
		s.pg.close()
	}
}

// postgres is a TCP listener standing in for a database: it accepts and
// closes connections while up, and during an outage its port refuses them.
type postgres struct {
	log  *slog.Logger
	wg   *sync.WaitGroup
	addr string

	mu     sync.Mutex
	ln     net.Listener
	closed bool
}

func startPostgres(log *slog.Logger, wg *sync.WaitGroup) (*postgres, error) {
	ln, err := listenLoopback()
	if err != nil {
		return nil, err
	}
	p := &postgres{log: log, wg: wg, addr: ln.Addr().String()}
	p.accept(ln)
	return p, nil
}

func (p *postgres) accept(ln net.Listener) {
	p.ln = ln
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

func (p *postgres) isUp() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ln != nil
}

// down closes the listener: connections are refused from now on.
func (p *postgres) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
}

// up reopens the listener on the same port. Another process may have
// taken the port in the meantime; then the database stays down and the
// next cycle tries again.
func (p *postgres) up() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("demo: reopen postgres on %s: %w", p.addr, err)
	}
	p.accept(ln)
	return nil
}

// cycle runs the outage schedule until ctx ends.
func (p *postgres) cycle(ctx context.Context, tick time.Duration) {
	wait := func(n int) bool {
		t := time.NewTimer(time.Duration(n) * tick)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	if !wait(firstOutageTicks) {
		return
	}
	for {
		p.log.Info("simulated outage: postgres goes down", "for", time.Duration(outageTicks)*tick)
		p.down()
		if !wait(outageTicks) {
			return
		}
		if err := p.up(); err != nil {
			p.log.Warn("postgres stays down", "err", err)
		} else {
			p.log.Info("simulated outage over: postgres is back")
		}
		if !wait(cycleTicks - outageTicks) {
			return
		}
	}
}

func (p *postgres) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.down()
}

// serveSMTP answers like a mail relay, just enough for an smtp check:
// a banner, EHLO/HELO, NOOP, RSET and QUIT.
func serveSMTP(ln net.Listener) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			fmt.Fprint(c, "220 mail.demo.internal ESMTP nocsoc-demo\r\n")
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				verb, _, _ := strings.Cut(strings.ToUpper(strings.TrimSpace(line)), " ")
				switch verb {
				case "EHLO":
					fmt.Fprint(c, "250-mail.demo.internal\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n")
				case "HELO", "NOOP", "RSET":
					fmt.Fprint(c, "250 OK\r\n")
				case "QUIT":
					fmt.Fprint(c, "221 bye\r\n")
					return
				default:
					fmt.Fprint(c, "502 command not implemented\r\n")
				}
			}
		}()
	}
}

// expiringCert makes a self-signed certificate for 127.0.0.1 that
// expires validFor after now.
func expiringCert(now time.Time, validFor time.Duration) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("demo: certificate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("demo: certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "billing.demo.internal", Organization: []string{"nocsoc demo"}},
		DNSNames:     []string{"billing.demo.internal"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-24 * time.Hour),
		NotAfter:     now.Add(validFor),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("demo: create certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// receiver is the loopback webhook endpoint the demo's notification
// channels point to, so deliveries succeed and show in the delivery log.
type receiver struct {
	addr  string
	srv   *http.Server
	count atomic.Int64
	done  chan struct{}
}

func startReceiver(log *slog.Logger) (*receiver, error) {
	ln, err := listenLoopback()
	if err != nil {
		return nil, err
	}
	r := &receiver{addr: ln.Addr().String(), done: make(chan struct{})}
	r.srv = newServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		n := r.count.Add(1)
		log.Debug("notification received", "path", req.URL.Path, "n", n)
		w.WriteHeader(http.StatusNoContent)
	}), log)
	go func() {
		defer close(r.done)
		_ = r.srv.Serve(ln)
	}()
	return r, nil
}

func (r *receiver) close() {
	_ = r.srv.Close()
	<-r.done
}
