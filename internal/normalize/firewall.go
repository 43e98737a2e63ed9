package normalize

import (
	"strings"

	"github.com/nocsoc/nocsoc/internal/event"
)

// parseFirewall handles netfilter LOG/NFLOG lines written by iptables,
// nftables and ufw: "[UFW BLOCK] IN=eth0 OUT= MAC=… SRC=1.2.3.4 DST=…
// LEN=60 … PROTO=TCP SPT=51234 DPT=22 …". The text before IN= is the rule's
// log prefix.
func parseFirewall(e *event.Event, msg string) bool {
	i := strings.Index(msg, "IN=")
	for i > 0 && msg[i-1] != ' ' && msg[i-1] != ']' && msg[i-1] != ':' {
		// "IN=" inside another word: look further.
		j := strings.Index(msg[i+3:], "IN=")
		if j < 0 {
			return false
		}
		i += 3 + j
	}
	if i < 0 || !strings.Contains(msg[i:], "SRC=") {
		return false
	}
	prefix := strings.TrimSpace(msg[:i])
	prefix = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(prefix, "["), "]"))
	e.Set(fCategory, catNetwork)
	action, typ := "firewall_log", "connection"
	if prefix != "" {
		e.Set("rule.name", prefix)
		switch {
		case containsFold(prefix, "BLOCK"), containsFold(prefix, "DROP"),
			containsFold(prefix, "REJECT"), containsFold(prefix, "DENY"), containsFold(prefix, "DENIED"):
			action, typ = "firewall_block", "denied"
		case containsFold(prefix, "ALLOW"), containsFold(prefix, "ACCEPT"):
			action, typ = "firewall_allow", "allowed"
		}
	}
	e.Set(fAction, action)
	e.Set("event.type", typ)
	kvSpace(msg[i:], func(k, v string) {
		switch k {
		case "IN":
			if v != "" {
				e.Set("observer.ingress.interface.name", v)
			}
		case "OUT":
			if v != "" {
				e.Set("observer.egress.interface.name", v)
			}
		case "SRC":
			setAddr(e, fSrcIP, "", v)
		case "DST":
			setAddr(e, fDstIP, "", v)
		case "SPT":
			setNum(e, fSrcPort, v)
		case "DPT":
			setNum(e, fDstPort, v)
		case "LEN":
			setNum(e, "network.bytes", v)
		case "PROTO":
			e.Set("network.transport", protoName(v))
		}
	})
	return true
}

// protoName lower-cases the common protocol names without allocating.
func protoName(p string) string {
	switch p {
	case "TCP":
		return "tcp"
	case "UDP":
		return "udp"
	case "ICMP":
		return "icmp"
	case "ICMPv6":
		return "ipv6-icmp"
	case "UDPLITE":
		return "udplite"
	case "SCTP":
		return "sctp"
	}
	return strings.ToLower(p)
}

// containsFold reports whether s contains the upper-case ASCII word up,
// ignoring case.
func containsFold(s, up string) bool {
	n := len(up)
outer:
	for i := 0; i+n <= len(s); i++ {
		for j := 0; j < n; j++ {
			c := s[i+j]
			if c >= 'a' && c <= 'z' {
				c -= 'a' - 'A'
			}
			if c != up[j] {
				continue outer
			}
		}
		return true
	}
	return false
}
