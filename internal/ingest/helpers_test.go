package ingest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/event"
)

// waitLimit bounds every wait: generous, because the machine is shared;
// tests never sleep to pass, they wait for a condition.
const waitLimit = 20 * time.Second

// collectSink stores every batch; gate, when set, blocks writes until it is
// closed (back-pressure tests).
type collectSink struct {
	mu      sync.Mutex
	evs     []event.Event
	calls   int
	changed chan struct{}
	gate    chan struct{}
	entered chan struct{} // signalled when a write starts
}

func newSink() *collectSink {
	return &collectSink{changed: make(chan struct{}, 1), entered: make(chan struct{}, 1)}
}

func (s *collectSink) Write(ctx context.Context, evs []event.Event) error {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	s.evs = append(s.evs, evs...)
	s.calls++
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return nil
}

func (s *collectSink) events() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event.Event(nil), s.evs...)
}

// waitN waits until at least n events arrived and returns them.
func (s *collectSink) waitN(t *testing.T, n int) []event.Event {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		have := len(s.evs)
		s.mu.Unlock()
		if have >= n {
			return s.events()
		}
		select {
		case <-s.changed:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %d events; have %d", n, len(s.events()))
		}
	}
}

// waitFor polls cond (cheaply, on a short tick) until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var fixedNow = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func start(t *testing.T, sink Sink, cfg Config, tweak func(*Options)) *Manager {
	t.Helper()
	o := Options{Sink: sink, Now: func() time.Time { return fixedNow }, Location: time.UTC,
		BatchSize: 100, FlushEvery: 20 * time.Millisecond, StateDir: t.TempDir()}
	if tweak != nil {
		tweak(&o)
	}
	m := NewManager(o)
	if err := m.Start(context.Background(), cfg); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = m.Stop() })
	return m
}

func dial(t *testing.T, network string, addr net.Addr) net.Conn {
	t.Helper()
	c, err := net.Dial(network, addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// selfSigned writes a certificate for 127.0.0.1 and returns the file paths
// and a pool trusting it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "nocsoc test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
