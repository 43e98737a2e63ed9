package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// resolvConfTTL is how long the nameserver read from resolv.conf is reused
// before the file is read again (it changes with DHCP or VPNs).
const resolvConfTTL = time.Minute

func (p *Prober) probeDNS(ctx context.Context, s Spec, res *Result) error {
	d := s.DNS
	if d == nil {
		d = &DNSSpec{}
	}
	rtype := strings.ToUpper(d.RecordType)
	if rtype == "" {
		rtype = "A"
	}
	qtype, ok := dns.StringToType[rtype]
	if !ok {
		return fmt.Errorf("dns.record_type: unsupported record type %q", d.RecordType)
	}
	server := d.Resolver
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

	name := dns.Fqdn(s.Target)
	phase := fmt.Sprintf("query %s %s @%s", name, rtype, server)
	msg := new(dns.Msg)
	msg.SetQuestion(name, qtype)
	msg.RecursionDesired = true
	msg.SetEdns0(1232, false)

	client := &dns.Client{Net: "udp"}
	if dl, ok := ctx.Deadline(); ok {
		client.Timeout = time.Until(dl)
	}
	resp, _, err := client.ExchangeContext(ctx, msg, server)
	if err == nil && resp.Truncated {
		// The answer did not fit in UDP: ask again over TCP, as resolvers do.
		client.Net = "tcp"
		resp, _, err = client.ExchangeContext(ctx, msg, server)
	}
	if err != nil {
		return inPhase(phase, err)
	}
	if resp.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("%s: rcode %s", phase, dns.RcodeToString[resp.Rcode])
	}

	var all, matching []string
	for _, rr := range resp.Answer {
		text := rrText(rr)
		all = append(all, text)
		if rr.Header().Rrtype == qtype {
			matching = append(matching, text)
		}
	}
	res.Detail = strings.Join(all, ", ")

	if len(d.Expect) == 0 {
		if len(matching) == 0 {
			if len(all) == 0 {
				return fmt.Errorf("%s: no answers", phase)
			}
			return fmt.Errorf("%s: no %s records in the answer (got %s)", phase, rtype, res.Detail)
		}
		return nil
	}
	var missing []string
	for _, want := range d.Expect {
		found := false
		for _, rr := range resp.Answer {
			if rr.Header().Rrtype == qtype && rrMatches(rr, want) {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, strconv.Quote(want))
		}
	}
	if len(missing) > 0 {
		got := res.Detail
		if got == "" {
			got = "no answers"
		}
		return fmt.Errorf("expected %s answer %s not found (got %s)", rtype, strings.Join(missing, ", "), got)
	}
	return nil
}

// systemResolver returns the first nameserver of resolv.conf, re-reading
// the file at most once per resolvConfTTL.
func (p *Prober) systemResolver() (string, error) {
	p.sysMu.Lock()
	defer p.sysMu.Unlock()
	if !p.sysLoaded.IsZero() && time.Since(p.sysLoaded) < resolvConfTTL {
		return p.sysServer, p.sysErr
	}
	p.sysLoaded = time.Now()
	p.sysServer, p.sysErr = "", nil
	cfg, err := dns.ClientConfigFromFile(p.resolvConf)
	switch {
	case err != nil:
		p.sysErr = fmt.Errorf("%w: read %s: %w", errNoResolver, p.resolvConf, err)
	case len(cfg.Servers) == 0:
		p.sysErr = fmt.Errorf("%w: no nameserver in %s", errNoResolver, p.resolvConf)
	default:
		p.sysServer = net.JoinHostPort(cfg.Servers[0], cfg.Port)
	}
	return p.sysServer, p.sysErr
}

// rrText is an answer's value as an operator writes it: the address, the
// target name without its trailing dot, "pref host" for MX, the joined
// strings of TXT, and the record data for other types.
func rrText(rr dns.RR) string {
	switch v := rr.(type) {
	case *dns.A:
		return v.A.String()
	case *dns.AAAA:
		return v.AAAA.String()
	case *dns.CNAME:
		return trimDot(v.Target)
	case *dns.NS:
		return trimDot(v.Ns)
	case *dns.PTR:
		return trimDot(v.Ptr)
	case *dns.MX:
		return strconv.Itoa(int(v.Preference)) + " " + trimDot(v.Mx)
	case *dns.TXT:
		return strings.Join(v.Txt, "")
	default:
		return strings.TrimSpace(strings.TrimPrefix(rr.String(), rr.Header().String()))
	}
}

// rrMatches compares one expected value with one answer.
func rrMatches(rr dns.RR, want string) bool {
	want = strings.TrimSpace(want)
	switch v := rr.(type) {
	case *dns.A:
		ip := net.ParseIP(want)
		return ip != nil && ip.Equal(v.A)
	case *dns.AAAA:
		ip := net.ParseIP(want)
		return ip != nil && ip.Equal(v.AAAA)
	case *dns.CNAME:
		return sameName(v.Target, want)
	case *dns.NS:
		return sameName(v.Ns, want)
	case *dns.PTR:
		return sameName(v.Ptr, want)
	case *dns.MX:
		if pref, host, ok := strings.Cut(want, " "); ok {
			return pref == strconv.Itoa(int(v.Preference)) && sameName(v.Mx, strings.TrimSpace(host))
		}
		return sameName(v.Mx, want)
	case *dns.TXT:
		return strings.Join(v.Txt, "") == want
	default:
		return strings.EqualFold(trimDot(rrText(rr)), trimDot(want))
	}
}

func trimDot(name string) string { return strings.TrimSuffix(name, ".") }

// sameName compares DNS names case-insensitively, with or without the
// trailing dot.
func sameName(a, b string) bool { return strings.EqualFold(trimDot(a), trimDot(b)) }

// errNoResolver is returned when no DNS server is configured anywhere.
var errNoResolver = errors.New("no dns resolver configured")
