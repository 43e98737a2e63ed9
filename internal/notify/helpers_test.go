package notify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// testCert returns a self-signed certificate for 127.0.0.1 and a pool that
// trusts it.
func testCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "nocsoc notify test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// memLog is an in-memory DeliveryLog.
type memLog struct {
	mu sync.Mutex
	ds []Delivery
}

func (l *memLog) RecordDelivery(_ context.Context, d Delivery) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	d.ID = int64(len(l.ds) + 1)
	l.ds = append(l.ds, d)
	return nil
}

func (l *memLog) all() []Delivery {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Delivery(nil), l.ds...)
}

func ptr[T any](v T) *T { return &v }

func sampleMessage() Message {
	return Message{
		Event:      EventTriggered,
		IncidentID: 42,
		Title:      "db is down",
		Severity:   "critical",
		Team:       "noc",
		Status:     "triggered",
		Tier:       "L1",
		Summary:    "postgres on db1 refuses connections",
		URL:        "https://nocsoc.example/incidents/42",
		Labels:     map[string]string{"host": "db1", "service": "postgres"},
		Recipients: []string{"alice"},
		Time:       time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC),
	}
}
