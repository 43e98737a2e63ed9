package check

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// mailZone is an in-process DNS server whose records a test can change.
type mailZone struct {
	mu      sync.Mutex
	records map[string][]string // "name. TYPE" → RR texts
	fail    bool                // answer SERVFAIL
}

func (z *mailZone) set(name, typ string, rrs ...string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.records[strings.ToLower(dns.Fqdn(name))+" "+typ] = rrs
}

func (z *mailZone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	q := req.Question[0]
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.fail {
		m.Rcode = dns.RcodeServerFailure
		w.WriteMsg(m)
		return
	}
	for _, s := range z.records[strings.ToLower(q.Name)+" "+dns.TypeToString[q.Qtype]] {
		rr, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		m.Answer = append(m.Answer, rr)
	}
	w.WriteMsg(m)
}

const goodDKIM = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAuv7c3MA7/ZGvTHrsn1KH+Zm1cbbnNJH4rfKk2dE0Tv2ZmLo="

// newMailZone serves a healthy example.test on 127.0.0.1.
func newMailZone(t *testing.T) (*mailZone, string) {
	t.Helper()
	z := &mailZone{records: map[string][]string{}}
	z.set("example.test", "MX", "example.test. 60 IN MX 10 mx1.example.test.", "example.test. 60 IN MX 20 mx2.example.test.")
	z.set("mx1.example.test", "A", "mx1.example.test. 60 IN A 192.0.2.10")
	z.set("mx2.example.test", "AAAA", "mx2.example.test. 60 IN AAAA 2001:db8::10")
	z.set("example.test", "TXT", `example.test. 60 IN TXT "google-site-verification=abc"`,
		`example.test. 60 IN TXT "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 " "include:_spf.example.net mx -all"`)
	z.set("_dmarc.example.test", "TXT", `_dmarc.example.test. 60 IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@example.test; pct=100"`)
	z.set("s1._domainkey.example.test", "TXT", `s1._domainkey.example.test. 60 IN TXT "v=DKIM1; k=rsa; p=`+goodDKIM+`"`)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: z, NotifyStartedFunc: func() { close(started) }}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return z, pc.LocalAddr().String()
}

func TestProbeMailPosture(t *testing.T) {
	z, addr := newMailZone(t)
	p := NewProber(ProberOptions{Resolver: addr})
	s := spec(t, Spec{Type: TypeMailPosture, Target: "example.test", MailPosture: &MailPostureSpec{DKIMSelectors: []string{"s1"}}})
	r, recs := p.ProbeMailPosture(context.Background(), s)
	if !r.OK {
		t.Fatalf("healthy domain failed: %s", r.Error)
	}
	if r.Detail != "2 MX, SPF -all, DMARC p=reject, DKIM s1" {
		t.Errorf("detail = %q", r.Detail)
	}
	if !recs.Complete || len(recs.MX) != 2 || len(recs.SPF) != 1 || len(recs.DKIM["s1"]) != 1 {
		t.Fatalf("records = %+v", recs)
	}
	fp := recs.Fingerprint()
	// The same answers give the same fingerprint.
	if _, again := p.ProbeMailPosture(context.Background(), s); again.Fingerprint() != fp {
		t.Errorf("fingerprint unstable:\n%s\n%s", recs.Canonical(), again.Canonical())
	}

	cases := []struct {
		name   string
		change func()
		want   string
	}{
		{"no MX", func() { z.set("example.test", "MX") }, "no MX record for example.test"},
		{"MX host unresolvable", func() { z.set("mx1.example.test", "A") }, "MX host mx1.example.test has no A or AAAA record"},
		{"no SPF", func() { z.set("example.test", "TXT", `example.test. 60 IN TXT "hello"`) }, "no SPF record"},
		{"two SPF", func() {
			z.set("example.test", "TXT", `example.test. 60 IN TXT "v=spf1 -all"`, `example.test. 60 IN TXT "v=spf1 mx -all"`)
		}, "2 SPF records"},
		{"SPF +all", func() { z.set("example.test", "TXT", `example.test. 60 IN TXT "v=spf1 mx +all"`) }, "every host on the internet"},
		{"SPF no all", func() { z.set("example.test", "TXT", `example.test. 60 IN TXT "v=spf1 mx"`) }, "does not end with an all mechanism"},
		{"SPF bad ip4", func() { z.set("example.test", "TXT", `example.test. 60 IN TXT "v=spf1 ip4:300.1.1.1 -all"`) }, "not an IPv4 address"},
		{"no DMARC", func() { z.set("_dmarc.example.test", "TXT") }, "no DMARC record (TXT v=DMARC1) at _dmarc.example.test"},
		{"DMARC bad policy", func() {
			z.set("_dmarc.example.test", "TXT", `_dmarc.example.test. 60 IN TXT "v=DMARC1; p=maybe"`)
		}, "p=maybe: must be none, quarantine or reject"},
		{"DMARC no policy", func() {
			z.set("_dmarc.example.test", "TXT", `_dmarc.example.test. 60 IN TXT "v=DMARC1; rua=mailto:x@y"`)
		}, "p= is required"},
		{"DKIM missing", func() { z.set("s1._domainkey.example.test", "TXT") }, "no DKIM key for selector s1"},
		{"DKIM revoked", func() {
			z.set("s1._domainkey.example.test", "TXT", `s1._domainkey.example.test. 60 IN TXT "v=DKIM1; p="`)
		}, "revoked"},
		{"DKIM not base64", func() {
			z.set("s1._domainkey.example.test", "TXT", `s1._domainkey.example.test. 60 IN TXT "v=DKIM1; p=!!!"`)
		}, "not base64"},
	}
	saved := map[string][]string{}
	z.mu.Lock()
	for k, v := range z.records {
		saved[k] = v
	}
	z.mu.Unlock()
	for _, tc := range cases {
		tc.change()
		r, recs := p.ProbeMailPosture(context.Background(), s)
		if r.OK || !strings.Contains(r.Error, tc.want) {
			t.Errorf("%s: ok=%v error %q, want %q", tc.name, r.OK, r.Error, tc.want)
		}
		if !recs.Complete {
			t.Errorf("%s: records incomplete", tc.name)
		}
		if tc.name != "MX host unresolvable" && recs.Fingerprint() == fp {
			t.Errorf("%s: fingerprint did not change", tc.name)
		}
		z.mu.Lock()
		z.records = map[string][]string{}
		for k, v := range saved {
			z.records[k] = v
		}
		z.mu.Unlock()
	}

	// A failing resolver fails the probe and leaves the records incomplete:
	// no change can be concluded from it.
	z.mu.Lock()
	z.fail = true
	z.mu.Unlock()
	r, recs = p.ProbeMailPosture(context.Background(), s)
	if r.OK || !strings.Contains(r.Error, "SERVFAIL") || recs.Complete {
		t.Errorf("SERVFAIL: ok=%v error %q complete=%v", r.OK, r.Error, recs.Complete)
	}
}

func TestParseSPF(t *testing.T) {
	for rec, want := range map[string]string{
		"v=spf1 -all":                                 "-all",
		"v=spf1 mx a:mail.example.com/24 ~all":        "~all",
		"v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 ?all":   "?all",
		"v=spf1 include:_spf.google.com -all exp=x.y": "-all",
		"v=spf1 redirect=_spf.example.com":            "redirect=_spf.example.com",
		"V=SPF1 MX -ALL":                              "-all",
	} {
		got, err := ParseSPF(rec)
		if err != nil || !strings.EqualFold(got, want) {
			t.Errorf("ParseSPF(%q) = %q, %v; want %q", rec, got, err, want)
		}
	}
	for _, rec := range []string{
		"v=spf2 -all", "v=spf1", "v=spf1 all", "v=spf1 -all mx", "v=spf1 include -all", "v=spf1 ip4:2001:db8::1 -all",
		"v=spf1 foo -all", "v=spf1 redirect=a redirect=b",
		"v=spf1 include:a include:b include:c include:d include:e include:f include:g include:h include:i include:j include:k -all",
	} {
		if _, err := ParseSPF(rec); err == nil {
			t.Errorf("ParseSPF(%q) accepted", rec)
		}
	}
}

func TestParseDMARCAndDKIM(t *testing.T) {
	if p, err := ParseDMARC("v=DMARC1; p=quarantine; sp=reject; adkim=s; aspf=r; pct=50; rua=mailto:a@b,mailto:c@d"); err != nil || p != "quarantine" {
		t.Errorf("DMARC: %q %v", p, err)
	}
	for _, rec := range []string{"p=reject; v=DMARC1", "v=DMARC1", "v=DMARC1; p=reject; pct=200", "v=DMARC1; p=reject; adkim=x",
		"v=DMARC1; p=reject; rua=dmarc@example.com", "v=DMARC1; p=reject; p=none", "v=DMARC1; garbage"} {
		if _, err := ParseDMARC(rec); err == nil {
			t.Errorf("ParseDMARC(%q) accepted", rec)
		}
	}
	if err := ParseDKIM("k=rsa; p=" + goodDKIM); err != nil {
		t.Errorf("DKIM without v=: %v", err)
	}
	for _, rec := range []string{"v=DKIM1", "k=rsa; v=DKIM1; p=" + goodDKIM, "v=DKIM1; k=dsa; p=" + goodDKIM, "v=DKIM1; p="} {
		if err := ParseDKIM(rec); err == nil {
			t.Errorf("ParseDKIM(%q) accepted", rec)
		}
	}
}

func TestMailPostureSpecValidation(t *testing.T) {
	for _, tc := range []struct {
		s     Spec
		field string
	}{
		{Spec{Name: "m", Type: TypeMailPosture, Target: "https://example.com"}, "target"},
		{Spec{Name: "m", Type: TypeMailPosture, Target: "localhost"}, "target"},
		{Spec{Name: "m", Type: TypeMailPosture, Target: "example.com", MailPosture: &MailPostureSpec{DKIMSelectors: []string{"a b"}}}, "mail_posture.dkim_selectors[0]"},
		{Spec{Name: "m", Type: TypeMailPosture, Target: "example.com", MailPosture: &MailPostureSpec{DKIMSelectors: []string{"s1", "S1"}}}, "mail_posture.dkim_selectors[1]"},
		{Spec{Name: "m", Type: TypeMailPosture, Target: "example.com", MailPosture: &MailPostureSpec{Resolver: "not a host"}}, "mail_posture.resolver"},
		{Spec{Name: "m", Type: TypeDNS, Target: "example.com", MailPosture: &MailPostureSpec{}}, "mail_posture"},
	} {
		err := tc.s.Validate()
		fe, ok := err.(*FieldError)
		if !ok || fe.Field != tc.field {
			t.Errorf("%+v: err = %v, want field %s", tc.s, err, tc.field)
		}
	}
	ok := Spec{Name: "m", Type: TypeMailPosture, Target: "example.com.", MailPosture: &MailPostureSpec{DKIMSelectors: []string{"google", "s1.2024"}, Resolver: "127.0.0.1:53"}}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid spec: %v", err)
	}
}
