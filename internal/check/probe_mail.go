package check

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// MailPostureSpec holds the options of a mail_posture check. The check's
// target is the mail domain.
type MailPostureSpec struct {
	// Resolver is host:port of the DNS server to ask; empty means the
	// prober's default, then the system's first resolver.
	Resolver string `yaml:"resolver" json:"resolver,omitempty"`
	// DKIMSelectors are the selectors whose <selector>._domainkey.<domain>
	// keys must be published (e.g. "google", "s1").
	DKIMSelectors []string `yaml:"dkim_selectors" json:"dkim_selectors,omitempty"`
}

// maxDKIMSelectors bounds the selectors of one check.
const maxDKIMSelectors = 20

var selectorRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

func validateMailPosture(s *Spec) error {
	d := strings.TrimSuffix(strings.TrimSpace(s.Target), ".")
	if d == "" || strings.ContainsAny(d, "/:@ ") || !strings.Contains(d, ".") {
		return &FieldError{"target", fmt.Sprintf("a mail_posture check needs a mail domain like example.com, got %q", s.Target)}
	}
	if _, ok := dns.IsDomainName(d); !ok {
		return &FieldError{"target", fmt.Sprintf("%q is not a valid domain name", s.Target)}
	}
	m := s.MailPosture
	if m == nil {
		return nil
	}
	if len(m.DKIMSelectors) > maxDKIMSelectors {
		return &FieldError{"mail_posture.dkim_selectors", fmt.Sprintf("at most %d selectors (got %d)", maxDKIMSelectors, len(m.DKIMSelectors))}
	}
	seen := map[string]bool{}
	for i, sel := range m.DKIMSelectors {
		if !selectorRE.MatchString(sel) || len(sel) > 63 {
			return &FieldError{fmt.Sprintf("mail_posture.dkim_selectors[%d]", i), fmt.Sprintf("%q is not a DKIM selector (letters, digits, '-', '_' and dots)", sel)}
		}
		if seen[strings.ToLower(sel)] {
			return &FieldError{fmt.Sprintf("mail_posture.dkim_selectors[%d]", i), fmt.Sprintf("selector %q is listed twice", sel)}
		}
		seen[strings.ToLower(sel)] = true
	}
	if m.Resolver != "" {
		if _, _, err := net.SplitHostPort(m.Resolver); err != nil && net.ParseIP(m.Resolver) == nil {
			return &FieldError{"mail_posture.resolver", fmt.Sprintf("%q is not host:port or an IP address", m.Resolver)}
		}
	}
	return nil
}

// MailRecords are the DNS records a mail_posture check read. Complete is
// false when some lookup failed (timeout, SERVFAIL): the records are then
// not a reliable picture and must not be compared.
type MailRecords struct {
	Domain string
	MX     []string            // "pref host", sorted
	SPF    []string            // TXT records at the domain starting with v=spf1
	DMARC  []string            // TXT records at _dmarc.<domain> starting with v=DMARC1
	DKIM   map[string][]string // selector → TXT records
	// Complete is set when every lookup was answered.
	Complete bool
}

// Canonical is the records as sorted lines ("MX 10 mx.example.com",
// "SPF v=spf1 …", "DKIM s1 v=DKIM1; …"): the text compared between runs.
func (m MailRecords) Canonical() string {
	var lines []string
	for _, v := range m.MX {
		lines = append(lines, "MX "+v)
	}
	for _, v := range m.SPF {
		lines = append(lines, "SPF "+v)
	}
	for _, v := range m.DMARC {
		lines = append(lines, "DMARC "+v)
	}
	sels := make([]string, 0, len(m.DKIM))
	for s := range m.DKIM {
		sels = append(sels, s)
	}
	sort.Strings(sels)
	for _, s := range sels {
		if len(m.DKIM[s]) == 0 {
			lines = append(lines, "DKIM "+s+" (none)")
		}
		for _, v := range m.DKIM[s] {
			lines = append(lines, "DKIM "+s+" "+v)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// Fingerprint is the SHA-256 of Canonical.
func (m MailRecords) Fingerprint() string {
	sum := sha256.Sum256([]byte(m.Canonical()))
	return hex.EncodeToString(sum[:])
}

type mailRecordsKey struct{}

// ProbeMailPosture runs a mail_posture check like Probe and also returns
// the records it read, so the caller can notice when they change.
func (p *Prober) ProbeMailPosture(ctx context.Context, s Spec) (Result, MailRecords) {
	var recs MailRecords
	res := p.Probe(context.WithValue(ctx, mailRecordsKey{}, &recs), s)
	return res, recs
}

// mailLookup asks one DNS question. NXDOMAIN and NODATA are answers (no
// records); any other failure is an error.
type mailLookup struct {
	server string
	client *dns.Client
}

func (l *mailLookup) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	msg := new(dns.Msg)
	msg.SetQuestion(dns.Fqdn(name), qtype)
	msg.RecursionDesired = true
	msg.SetEdns0(1232, false)
	c := *l.client
	if dl, ok := ctx.Deadline(); ok {
		c.Timeout = time.Until(dl)
	}
	phase := fmt.Sprintf("query %s %s @%s", dns.Fqdn(name), dns.TypeToString[qtype], l.server)
	resp, _, err := c.ExchangeContext(ctx, msg, l.server)
	if err == nil && resp.Truncated {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, msg, l.server)
	}
	if err != nil {
		return nil, inPhase(phase, err)
	}
	switch resp.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	default:
		return nil, fmt.Errorf("%s: rcode %s", phase, dns.RcodeToString[resp.Rcode])
	}
	var out []dns.RR
	for _, rr := range resp.Answer {
		if rr.Header().Rrtype == qtype {
			out = append(out, rr)
		}
	}
	return out, nil
}

// txt returns the TXT strings at name, each record's strings joined.
func (l *mailLookup) txt(ctx context.Context, name string) ([]string, error) {
	rrs, err := l.query(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	sort.Strings(out)
	return out, nil
}

func withPrefix(recs []string, prefix string) []string {
	var out []string
	for _, r := range recs {
		t := strings.TrimSpace(r)
		if len(t) >= len(prefix) && strings.EqualFold(t[:len(prefix)], prefix) && (len(t) == len(prefix) || t[len(prefix)] == ' ' || t[len(prefix)] == ';') {
			out = append(out, t)
		}
	}
	return out
}

// probeMailPosture reads MX, SPF, DMARC and DKIM records of the domain
// and fails with every problem found, joined. Lookup failures fail the
// probe at once (the records are then unknown, not wrong).
func (p *Prober) probeMailPosture(ctx context.Context, s Spec, res *Result) error {
	m := s.MailPosture
	if m == nil {
		m = &MailPostureSpec{}
	}
	server := m.Resolver
	if server == "" {
		server = p.resolver
	}
	if server == "" {
		var err error
		if server, err = p.systemResolver(); err != nil {
			return err
		}
	}
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(server, "53")
	}
	l := &mailLookup{server: server, client: &dns.Client{Net: "udp"}}
	domain := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s.Target), "."))
	recs := MailRecords{Domain: domain, DKIM: map[string][]string{}}
	var problems, summary []string

	// MX: present, and each host resolves to an address.
	mxs, err := l.query(ctx, domain, dns.TypeMX)
	if err != nil {
		return err
	}
	nullMX := false
	for _, rr := range mxs {
		mx := rr.(*dns.MX)
		host := strings.ToLower(trimDot(mx.Mx))
		recs.MX = append(recs.MX, strconv.Itoa(int(mx.Preference))+" "+host)
		if host == "" {
			nullMX = true // RFC 7505: the domain accepts no mail
			continue
		}
		a, err := l.query(ctx, host, dns.TypeA)
		if err != nil {
			return err
		}
		aaaa, err := l.query(ctx, host, dns.TypeAAAA)
		if err != nil {
			return err
		}
		if len(a)+len(aaaa) == 0 {
			problems = append(problems, fmt.Sprintf("MX host %s has no A or AAAA record", host))
		}
	}
	sort.Strings(recs.MX)
	switch {
	case len(recs.MX) == 0:
		problems = append(problems, "no MX record for "+domain)
	case nullMX:
		summary = append(summary, "null MX (accepts no mail)")
	default:
		summary = append(summary, fmt.Sprintf("%d MX", len(recs.MX)))
	}

	// SPF: exactly one v=spf1 record, parseable, ending with an all.
	txt, err := l.txt(ctx, domain)
	if err != nil {
		return err
	}
	recs.SPF = withPrefix(txt, "v=spf1")
	switch len(recs.SPF) {
	case 0:
		problems = append(problems, "no SPF record (TXT v=spf1) for "+domain)
	case 1:
		if policy, err := ParseSPF(recs.SPF[0]); err != nil {
			problems = append(problems, "SPF: "+err.Error())
		} else {
			summary = append(summary, "SPF "+policy)
		}
	default:
		problems = append(problems, fmt.Sprintf("%d SPF records for %s (there must be exactly one; receivers treat several as an error)", len(recs.SPF), domain))
	}

	// DMARC at _dmarc.<domain>.
	dtxt, err := l.txt(ctx, "_dmarc."+domain)
	if err != nil {
		return err
	}
	recs.DMARC = withPrefix(dtxt, "v=DMARC1")
	switch len(recs.DMARC) {
	case 0:
		problems = append(problems, "no DMARC record (TXT v=DMARC1) at _dmarc."+domain)
	case 1:
		if policy, err := ParseDMARC(recs.DMARC[0]); err != nil {
			problems = append(problems, "DMARC: "+err.Error())
		} else {
			summary = append(summary, "DMARC p="+policy)
		}
	default:
		problems = append(problems, fmt.Sprintf("%d DMARC records at _dmarc.%s (there must be exactly one)", len(recs.DMARC), domain))
	}

	// DKIM keys of the listed selectors.
	for _, sel := range m.DKIMSelectors {
		name := sel + "._domainkey." + domain
		ktxt, err := l.txt(ctx, name)
		if err != nil {
			return err
		}
		recs.DKIM[sel] = ktxt
		switch len(ktxt) {
		case 0:
			problems = append(problems, fmt.Sprintf("no DKIM key for selector %s (TXT at %s)", sel, name))
		case 1:
			if err := ParseDKIM(ktxt[0]); err != nil {
				problems = append(problems, fmt.Sprintf("DKIM selector %s: %v", sel, err))
			} else {
				summary = append(summary, "DKIM "+sel)
			}
		default:
			problems = append(problems, fmt.Sprintf("%d TXT records at %s (a DKIM selector must have one)", len(ktxt), name))
		}
	}
	recs.Complete = true
	if dst, ok := ctx.Value(mailRecordsKey{}).(*MailRecords); ok {
		*dst = recs
	}
	res.Detail = strings.Join(summary, ", ")
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

var (
	spfMechRE = regexp.MustCompile(`(?i)^([+?~-]?)(all|include|a|mx|ptr|ip4|ip6|exists)(.*)$`)
	spfModRE  = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_.-]*)=(.*)$`)
	cidrRE    = regexp.MustCompile(`^(/\d{1,2})?(//\d{1,3})?$`)
)

// ParseSPF checks an SPF record (RFC 7208) and returns its final policy
// ("-all", "~all", "?all" or "redirect=…"). It refuses records that do
// not end with an all mechanism (or a redirect), that end with +all (any
// host may send), that have malformed terms, or that need more than ten
// DNS lookups.
func ParseSPF(rec string) (string, error) {
	terms := strings.Fields(rec)
	if len(terms) == 0 || !strings.EqualFold(terms[0], "v=spf1") {
		return "", fmt.Errorf("%q does not start with v=spf1", rec)
	}
	lookups := 0
	final, redirect := "", ""
	seenMod := map[string]bool{}
	for _, t := range terms[1:] {
		if m := spfMechRE.FindStringSubmatch(t); m != nil && !strings.Contains(m[2]+m[3], "=") {
			if final != "" {
				return "", fmt.Errorf("mechanism %q after %s is never evaluated", t, final)
			}
			q, mech, rest := m[1], strings.ToLower(m[2]), m[3]
			switch mech {
			case "all":
				if rest != "" {
					return "", fmt.Errorf("malformed term %q", t)
				}
				if q == "" || q == "+" {
					return "", fmt.Errorf("ends with %sall: every host on the internet may send mail as this domain", q)
				}
				final = q + "all"
			case "include", "exists":
				if !strings.HasPrefix(rest, ":") || len(rest) < 2 {
					return "", fmt.Errorf("%q needs a domain (%s:example.com)", t, mech)
				}
				lookups++
			case "a", "mx":
				spec := rest
				if strings.HasPrefix(spec, ":") {
					spec = spec[1:]
					if i := strings.IndexByte(spec, '/'); i >= 0 {
						spec = spec[i:]
					} else {
						spec = ""
					}
				}
				if !cidrRE.MatchString(spec) {
					return "", fmt.Errorf("malformed term %q", t)
				}
				lookups++
			case "ptr":
				if rest != "" && !strings.HasPrefix(rest, ":") {
					return "", fmt.Errorf("malformed term %q", t)
				}
				lookups++
			case "ip4", "ip6":
				if !strings.HasPrefix(rest, ":") {
					return "", fmt.Errorf("%q needs an address (%s:192.0.2.0/24)", t, mech)
				}
				addr := rest[1:]
				var ip net.IP
				if strings.Contains(addr, "/") {
					var err error
					ip, _, err = net.ParseCIDR(addr)
					if err != nil {
						return "", fmt.Errorf("%q: %q is not an address or network", t, addr)
					}
				} else {
					ip = net.ParseIP(addr)
				}
				if ip == nil || (mech == "ip4") != (ip.To4() != nil) {
					return "", fmt.Errorf("%q: %q is not an %s address or network", t, addr, map[string]string{"ip4": "IPv4", "ip6": "IPv6"}[mech])
				}
			}
			continue
		}
		m := spfModRE.FindStringSubmatch(t)
		if m == nil {
			return "", fmt.Errorf("unknown term %q", t)
		}
		name := strings.ToLower(m[1])
		if seenMod[name] && (name == "redirect" || name == "exp") {
			return "", fmt.Errorf("modifier %s= appears twice", name)
		}
		seenMod[name] = true
		if name == "redirect" {
			if m[2] == "" {
				return "", fmt.Errorf("redirect= needs a domain")
			}
			redirect = "redirect=" + m[2]
			lookups++
		}
	}
	if lookups > 10 {
		return "", fmt.Errorf("needs %d DNS lookups; receivers stop at 10 (RFC 7208 section 4.6.4)", lookups)
	}
	switch {
	case final != "":
		return final, nil
	case redirect != "":
		return redirect, nil
	}
	return "", fmt.Errorf("does not end with an all mechanism (-all, ~all or ?all)")
}

// tagList parses "k=v; k2=v2" (DMARC, DKIM). Keys are lowercased; a tag
// may appear once.
func tagList(rec string) ([][2]string, error) {
	var out [][2]string
	seen := map[string]bool{}
	for part := range strings.SplitSeq(rec, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || k == "" {
			return nil, fmt.Errorf("malformed tag %q (want name=value)", part)
		}
		if seen[k] {
			return nil, fmt.Errorf("tag %s= appears twice", k)
		}
		seen[k] = true
		out = append(out, [2]string{k, strings.TrimSpace(v)})
	}
	return out, nil
}

// ParseDMARC checks a DMARC record (RFC 7489) and returns its policy
// (none, quarantine or reject).
func ParseDMARC(rec string) (string, error) {
	tags, err := tagList(rec)
	if err != nil {
		return "", err
	}
	if len(tags) == 0 || tags[0][0] != "v" || tags[0][1] != "DMARC1" {
		return "", fmt.Errorf("must start with v=DMARC1")
	}
	policy := ""
	for _, t := range tags[1:] {
		k, v := t[0], t[1]
		switch k {
		case "p", "sp":
			switch strings.ToLower(v) {
			case "none", "quarantine", "reject":
			default:
				return "", fmt.Errorf("%s=%s: must be none, quarantine or reject", k, v)
			}
			if k == "p" {
				policy = strings.ToLower(v)
			}
		case "pct":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 100 {
				return "", fmt.Errorf("pct=%s: must be 0 to 100", v)
			}
		case "adkim", "aspf":
			if v != "r" && v != "s" {
				return "", fmt.Errorf("%s=%s: must be r or s", k, v)
			}
		case "rua", "ruf":
			for u := range strings.SplitSeq(v, ",") {
				u = strings.TrimSpace(u)
				if i := strings.IndexByte(u, ':'); i <= 0 {
					return "", fmt.Errorf("%s: %q is not a URI (mailto:dmarc@example.com)", k, u)
				}
			}
		}
	}
	if policy == "" {
		return "", fmt.Errorf("no policy: p= is required")
	}
	return policy, nil
}

// ParseDKIM checks a DKIM key record (RFC 6376 section 3.6.1): v=DKIM1
// first if present, and a public key p= that is base64 and not empty (an
// empty p= means the key was revoked).
func ParseDKIM(rec string) error {
	tags, err := tagList(rec)
	if err != nil {
		return err
	}
	var key *string
	for i, t := range tags {
		k, v := t[0], t[1]
		switch k {
		case "v":
			if i != 0 || v != "DKIM1" {
				return fmt.Errorf("v= must come first and be DKIM1 (got v=%s)", v)
			}
		case "k":
			if v != "rsa" && v != "ed25519" {
				return fmt.Errorf("k=%s: unknown key type (rsa or ed25519)", v)
			}
		case "p":
			key = &tags[i][1]
		}
	}
	switch {
	case key == nil:
		return fmt.Errorf("no public key: p= is required")
	case *key == "":
		return fmt.Errorf("the key is revoked (empty p=)")
	}
	b64 := strings.Join(strings.Fields(*key), "")
	if _, err := base64.StdEncoding.DecodeString(b64); err != nil {
		return fmt.Errorf("p= is not base64: %v", err)
	}
	return nil
}
