package check

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
	"strings"
	"testing"
	"time"
)

// testCert returns a self-signed certificate valid from an hour ago until
// notAfter for the given DNS names and IPs, and a pool that trusts it.
func testCert(t testing.TB, notAfter time.Time, hosts ...string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "nocsoc test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
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

// days returns the time n days from now.
func days(n int) time.Time { return time.Now().Add(time.Duration(n) * 24 * time.Hour) }

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// spec normalizes and validates s, as the app does before probing.
func spec(t testing.TB, s Spec) Spec {
	t.Helper()
	if s.Name == "" {
		s.Name = "t"
	}
	if s.Timeout == 0 {
		s.Timeout = Duration(5 * time.Second)
	}
	s.Normalize()
	if err := s.Validate(); err != nil {
		t.Fatalf("invalid test spec: %v", err)
	}
	return s
}

// probeCase is one row of a probe table test.
type probeCase struct {
	name       string
	spec       Spec
	wantOK     bool
	wantErr    string // substring of Result.Error
	wantStatus int
	wantDetail string // substring of Result.Detail
}

// runCases probes every case and checks the result.
func runCases(t *testing.T, p *Prober, cases []probeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := spec(t, tc.spec)
			before := time.Now()
			r := p.Probe(context.Background(), s)
			checkResult(t, s, before, r)
			if r.OK != tc.wantOK {
				t.Errorf("OK = %v, want %v (error %q, detail %q)", r.OK, tc.wantOK, r.Error, r.Detail)
			}
			if tc.wantOK && r.Error != "" {
				t.Errorf("OK result has error %q", r.Error)
			}
			if !tc.wantOK && !strings.Contains(r.Error, tc.wantErr) {
				t.Errorf("error = %q, want it to contain %q", r.Error, tc.wantErr)
			}
			if tc.wantStatus != 0 && r.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d", r.StatusCode, tc.wantStatus)
			}
			if !strings.Contains(r.Detail, tc.wantDetail) {
				t.Errorf("detail = %q, want it to contain %q", r.Detail, tc.wantDetail)
			}
		})
	}
}

// checkResult checks the fields every Result must carry.
func checkResult(t *testing.T, s Spec, before time.Time, r Result) {
	t.Helper()
	if r.Check != s.Name {
		t.Errorf("Check = %q, want %q", r.Check, s.Name)
	}
	if r.Time.Before(before) || r.Time.After(time.Now()) {
		t.Errorf("Time = %v, not the probe's start", r.Time)
	}
	if r.Duration <= 0 {
		t.Errorf("Duration = %v, want > 0", r.Duration)
	}
	if !r.OK && r.Error == "" {
		t.Error("failed result without Error")
	}
}
