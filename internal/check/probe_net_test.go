package check

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/miekg/dns"
)

// serve accepts connections on l and hands each to handle until l closes.
func serve(t *testing.T, l net.Listener, handle func(net.Conn)) {
	t.Helper()
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}()
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestProbeTCP(t *testing.T) {
	// A line server: greets, then answers PING with PONG and anything else
	// with ERR before hanging up.
	l := listen(t)
	serve(t, l, func(c net.Conn) {
		io.WriteString(c, "HELLO svc\r\n")
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return
		}
		if line == "PING\n" {
			io.WriteString(c, "PONG\n")
		} else {
			io.WriteString(c, "ERR\n")
		}
	})
	addr := l.Addr().String()
	refused := closedAddr(t)
	tcp := func(send, expect string) Spec {
		return Spec{Type: TypeTCP, Target: addr, TCP: &TCPSpec{Send: send, Expect: expect}}
	}
	runCases(t, NewProber(ProberOptions{}), []probeCase{
		{name: "connect", spec: Spec{Type: TypeTCP, Target: addr}, wantOK: true, wantDetail: "connected to " + addr},
		{name: "banner", spec: tcp("", "HELLO"), wantOK: true},
		{name: "send and expect", spec: tcp("PING\n", "PONG"), wantOK: true},
		{name: "wrong answer, server closes", spec: tcp("QUIT\n", "PONG"), wantErr: `connection closed before "PONG" was received (got "HELLO svc\r\nERR\n")`},
		{name: "refused", spec: Spec{Type: TypeTCP, Target: refused}, wantErr: "connect " + refused + ": connection refused"},
	})
}

// dnsZone answers for example.test. and NXDOMAIN for everything else.
func dnsZone(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	q := req.Question[0]
	rrs := map[uint16][]string{
		dns.TypeA:   {"example.test. 60 IN A 192.0.2.1", "example.test. 60 IN A 192.0.2.2"},
		dns.TypeMX:  {"example.test. 60 IN MX 10 mail.example.test.", "example.test. 60 IN MX 20 backup.example.test."},
		dns.TypeTXT: {`example.test. 60 IN TXT "v=spf1 " "-all"`},
	}
	switch {
	case strings.EqualFold(q.Name, "example.test."):
		for _, s := range rrs[q.Qtype] {
			rr, err := dns.NewRR(s)
			if err != nil {
				panic(err)
			}
			m.Answer = append(m.Answer, rr)
		}
	case strings.EqualFold(q.Name, "alias.example.test.") && q.Qtype == dns.TypeA:
		rr, _ := dns.NewRR("alias.example.test. 60 IN CNAME example.test.")
		m.Answer = append(m.Answer, rr)
	default:
		m.Rcode = dns.RcodeNameError
	}
	w.WriteMsg(m)
}

// dnsServer starts a DNS server on 127.0.0.1 UDP and returns its address.
func dnsServer(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(dnsZone), NotifyStartedFunc: func() { close(started) }}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

func TestProbeDNS(t *testing.T) {
	addr := dnsServer(t)
	q := func(name, typ string, expect ...string) Spec {
		return Spec{Type: TypeDNS, Target: name, DNS: &DNSSpec{Resolver: addr, RecordType: typ, Expect: expect}}
	}
	runCases(t, NewProber(ProberOptions{}), []probeCase{
		{name: "A any answer", spec: q("example.test", ""), wantOK: true, wantDetail: "192.0.2.1, 192.0.2.2"},
		{name: "A expected", spec: q("example.test", "A", "192.0.2.2"), wantOK: true},
		{name: "A all expected", spec: q("example.test.", "a", "192.0.2.1", "192.0.2.2"), wantOK: true},
		{name: "A wrong", spec: q("example.test", "A", "192.0.2.1", "192.0.2.9"), wantErr: `expected A answer "192.0.2.9" not found (got 192.0.2.1, 192.0.2.2)`},
		{name: "MX pref host", spec: q("example.test", "MX", "10 mail.example.test"), wantOK: true, wantDetail: "10 mail.example.test, 20 backup.example.test"},
		{name: "MX host with dot", spec: q("example.test", "MX", "backup.example.test."), wantOK: true},
		{name: "MX wrong pref", spec: q("example.test", "MX", "20 mail.example.test"), wantErr: `"20 mail.example.test" not found`},
		{name: "TXT joined", spec: q("example.test", "TXT", "v=spf1 -all"), wantOK: true, wantDetail: "v=spf1 -all"},
		{name: "TXT wrong", spec: q("example.test", "TXT", "v=spf1 +all"), wantErr: `"v=spf1 +all" not found`},
		{name: "NXDOMAIN", spec: q("nope.example.test", "A"), wantErr: "rcode NXDOMAIN"},
		{name: "NXDOMAIN with expect", spec: q("nope.example.test", "A", "192.0.2.1"), wantErr: "rcode NXDOMAIN"},
		{name: "no answers", spec: q("example.test", "AAAA"), wantErr: "no answers"},
		{name: "CNAME only", spec: q("alias.example.test", "A"), wantErr: "no A records in the answer (got example.test)"},
	})

	t.Run("default resolver from options", func(t *testing.T) {
		s := spec(t, Spec{Type: TypeDNS, Target: "example.test"})
		if r := NewProber(ProberOptions{Resolver: addr}).Probe(context.Background(), s); !r.OK {
			t.Errorf("probe failed: %s", r.Error)
		}
	})
}

func TestSystemResolver(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(conf, []byte("# test\nsearch example.test\nnameserver 127.0.0.53\nnameserver ::1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := NewProber(ProberOptions{})
	p.resolvConf = conf
	if got, err := p.systemResolver(); err != nil || got != "127.0.0.53:53" {
		t.Errorf("systemResolver() = %q, %v; want 127.0.0.53:53", got, err)
	}

	p = NewProber(ProberOptions{})
	p.resolvConf = filepath.Join(dir, "missing")
	r := p.Probe(context.Background(), spec(t, Spec{Type: TypeDNS, Target: "example.test"}))
	if r.OK || !strings.Contains(r.Error, "no dns resolver configured") {
		t.Errorf("missing resolv.conf: OK=%v error %q", r.OK, r.Error)
	}
}

// tlsServer serves TLS with cert on 127.0.0.1 and returns its address.
func tlsServer(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	l := tls.NewListener(listen(t), &tls.Config{Certificates: []tls.Certificate{cert}})
	serve(t, l, func(c net.Conn) {
		c.(*tls.Conn).Handshake()
		io.Copy(io.Discard, c)
	})
	return l.Addr().String()
}

func TestProbeTLS(t *testing.T) {
	good, _ := testCert(t, days(60), "127.0.0.1", "svc.test")
	soon, _ := testCert(t, days(5), "127.0.0.1")
	other, _ := testCert(t, days(60), "other.test")
	pool := x509.NewCertPool()
	for _, c := range []tls.Certificate{good, soon, other} {
		pool.AddCert(c.Leaf)
	}
	goodAddr, soonAddr, otherAddr := tlsServer(t, good), tlsServer(t, soon), tlsServer(t, other)
	tlsSpec := func(addr string, o *TLSSpec) Spec { return Spec{Type: TypeTLS, Target: addr, TLS: o} }

	runCases(t, NewProber(ProberOptions{RootCAs: pool}), []probeCase{
		{name: "60 days", spec: tlsSpec(goodAddr, nil), wantOK: true, wantDetail: "(in 59 days), issuer CN=nocsoc test CA"},
		{name: "5 days, threshold 14", spec: tlsSpec(soonAddr, nil), wantErr: "certificate expires in 4 days (threshold 14)", wantDetail: "in 4 days"},
		{name: "5 days, threshold 3", spec: tlsSpec(soonAddr, &TLSSpec{ExpiryDays: 3}), wantOK: true},
		{name: "hostname mismatch", spec: tlsSpec(otherAddr, nil), wantErr: "certificate verification failed: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs"},
		{name: "hostname mismatch, named host", spec: tlsSpec(goodAddr, &TLSSpec{ServerName: "other.test"}), wantErr: "certificate verification failed: certificate is valid for svc.test, not other.test"},
		{name: "hostname mismatch, verify off", spec: tlsSpec(otherAddr, &TLSSpec{Verify: ptr(false)}), wantOK: true},
		{name: "server_name override", spec: tlsSpec(otherAddr, &TLSSpec{ServerName: "other.test"}), wantOK: true},
		{name: "server_name mismatch", spec: tlsSpec(goodAddr, &TLSSpec{ServerName: "wrong.test"}), wantErr: "not wrong.test"},
		{name: "refused", spec: tlsSpec(closedAddr(t), nil), wantErr: "connection refused"},
	})

	t.Run("untrusted", func(t *testing.T) {
		r := NewProber(ProberOptions{}).Probe(context.Background(), spec(t, tlsSpec(goodAddr, nil)))
		if r.OK || !strings.Contains(r.Error, "certificate signed by unknown authority") {
			t.Errorf("got OK=%v error %q", r.OK, r.Error)
		}
	})
}

// smtpServer runs a go-smtp server on 127.0.0.1, with STARTTLS when cert is
// given, and returns its address.
func smtpServer(t *testing.T, cert *tls.Certificate) string {
	t.Helper()
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return smtpSession{}, nil }))
	srv.Domain = "mx.test"
	if cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	l := listen(t)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

type smtpSession struct{}

func (smtpSession) Reset()                               {}
func (smtpSession) Logout() error                        { return nil }
func (smtpSession) Mail(string, *smtp.MailOptions) error { return nil }
func (smtpSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (smtpSession) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }

func TestProbeSMTP(t *testing.T) {
	good, pool := testCert(t, days(60), "127.0.0.1")
	soon, _ := testCert(t, days(5), "127.0.0.1")
	pool.AddCert(soon.Leaf)
	plain, tlsAddr, soonAddr := smtpServer(t, nil), smtpServer(t, &good), smtpServer(t, &soon)
	sm := func(addr string, o *SMTPSpec) Spec { return Spec{Type: TypeSMTP, Target: addr, SMTP: o} }

	runCases(t, NewProber(ProberOptions{RootCAs: pool}), []probeCase{
		{name: "banner and EHLO", spec: sm(plain, nil), wantOK: true, wantStatus: 220, wantDetail: "mx.test ESMTP"},
		{name: "expect banner", spec: sm(plain, &SMTPSpec{ExpectBanner: "mx.test", EHLO: "probe.example"}), wantOK: true},
		{name: "wrong banner", spec: sm(plain, &SMTPSpec{ExpectBanner: "postfix"}), wantErr: `does not contain "postfix"`, wantStatus: 220},
		{name: "STARTTLS not offered", spec: sm(plain, &SMTPSpec{StartTLS: true}), wantErr: "server does not offer STARTTLS"},
		{name: "STARTTLS verified", spec: sm(tlsAddr, &SMTPSpec{StartTLS: true}), wantOK: true, wantStatus: 220},
		{name: "STARTTLS expiring", spec: sm(soonAddr, &SMTPSpec{StartTLS: true}), wantErr: "certificate expires in 4 days (threshold 14)"},
		{name: "STARTTLS expiring, threshold 3", spec: sm(soonAddr, &SMTPSpec{StartTLS: true, ExpiryDays: 3}), wantOK: true},
		{name: "refused", spec: sm(closedAddr(t), nil), wantErr: "connection refused"},
	})

	t.Run("STARTTLS self-signed", func(t *testing.T) {
		p := NewProber(ProberOptions{}) // system roots do not trust the test cert
		r := p.Probe(context.Background(), spec(t, sm(tlsAddr, &SMTPSpec{StartTLS: true})))
		if r.OK || !strings.Contains(r.Error, "certificate signed by unknown authority") {
			t.Errorf("verify on: OK=%v error %q", r.OK, r.Error)
		}
		r = p.Probe(context.Background(), spec(t, sm(tlsAddr, &SMTPSpec{StartTLS: true, TLSVerify: ptr(false)})))
		if !r.OK {
			t.Errorf("verify off: %s", r.Error)
		}
	})
}

func TestProbeICMP(t *testing.T) {
	if os.Geteuid() != 0 && os.Getenv("CI") != "true" {
		t.Skip("icmp needs root or CAP_NET_RAW; run as root (or with CI=true to make this a failure)")
	}
	s := spec(t, Spec{Type: TypeICMP, Target: "127.0.0.1"})
	r := NewProber(ProberOptions{}).Probe(context.Background(), s)
	if !r.OK {
		t.Fatalf("ping 127.0.0.1: %s", r.Error)
	}
	if !strings.Contains(r.Detail, "reply from 127.0.0.1") {
		t.Errorf("detail = %q", r.Detail)
	}
}

func TestPingErrorPermission(t *testing.T) {
	ip := &net.IPAddr{IP: net.IPv4(127, 0, 0, 1)}
	err := pingError(ip, &net.OpError{Op: "listen", Net: "ip4:icmp", Err: os.NewSyscallError("socket", syscall.EPERM)})
	want := "icmp needs root or CAP_NET_RAW (or net.ipv4.ping_group_range): listen ip4:icmp: socket: operation not permitted"
	if got := describe(context.Background(), time.Second, err); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	err = pingError(ip, &net.OpError{Op: "listen", Net: "ip4:icmp", Err: os.NewSyscallError("socket", syscall.EINVAL)})
	if got := describe(context.Background(), time.Second, err); got != "ping 127.0.0.1: invalid argument" {
		t.Errorf("other error: %q", got)
	}
}

// TestProbeConcurrent shares one Prober between many goroutines (run with
// -race): the scheduler calls Probe concurrently.
func TestProbeConcurrent(t *testing.T) {
	web := httptestServer(t)
	dnsAddr := dnsServer(t)
	p := NewProber(ProberOptions{Resolver: dnsAddr})
	specs := []Spec{
		spec(t, Spec{Type: TypeHTTP, Target: web + "/text", HTTP: &HTTPSpec{BodyRegex: `healthy$`}}),
		spec(t, Spec{Type: TypeHTTP, Target: web + "/ok", HTTP: &HTTPSpec{JSON: []JSONAssert{{Path: "n", Equals: "42"}}}}),
		spec(t, Spec{Type: TypeDNS, Target: "example.test", DNS: &DNSSpec{Expect: []string{"192.0.2.1"}}}),
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64*len(specs))
	for i := range 64 {
		wg.Go(func() {
			if r := p.Probe(context.Background(), specs[i%len(specs)]); !r.OK {
				errs <- r.Error
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
