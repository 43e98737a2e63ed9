package normalize

import (
	"strings"

	"github.com/nocsoc/nocsoc/internal/event"
)

// parsePostfix handles the postfix daemons (smtpd, qmgr, smtp, cleanup,
// local …): connections, rejections, SASL failures and the per-message
// queue lines.
func parsePostfix(e *event.Event, msg string) bool {
	switch {
	case strings.HasPrefix(msg, "connect from "):
		e.Set(fCategory, catNetwork)
		e.Set(fAction, "mail_connect")
		hostIP(e, msg[len("connect from "):])
		return true
	case strings.HasPrefix(msg, "disconnect from "):
		e.Set(fCategory, catNetwork)
		e.Set(fAction, "mail_disconnect")
		hostIP(e, msg[len("disconnect from "):])
		return true
	case strings.HasPrefix(msg, "lost connection after "):
		_, rest, ok := strings.Cut(msg, " from ")
		if !ok {
			return false
		}
		e.Set(fCategory, catNetwork)
		e.Set(fAction, "mail_connection_lost")
		hostIP(e, rest)
		return true
	case strings.HasPrefix(msg, "NOQUEUE: reject: "):
		postfixReject(e, msg[len("NOQUEUE: reject: "):])
		return true
	case strings.HasPrefix(msg, "warning: "):
		// "warning: unknown[1.2.3.4]: SASL LOGIN authentication failed: UGFzc3dvcmQ6"
		rest := msg[len("warning: "):]
		if !strings.Contains(rest, "SASL") || !strings.Contains(rest, "authentication failed") {
			return false
		}
		e.Set(fCategory, catAuth)
		e.Set(fAction, "mail_auth_failed")
		e.Set(fOutcome, failure)
		hostIP(e, rest)
		if _, m, ok := strings.Cut(rest, "SASL "); ok {
			mech, _, _ := strings.Cut(m, " ")
			e.Set("postfix.sasl_method", mech)
		}
		return true
	}
	id, rest, ok := strings.Cut(msg, ": ")
	if !ok || !isQueueID(id) {
		return false
	}
	e.Set("postfix.queue_id", id)
	e.Set(fCategory, catEmail)
	switch {
	case strings.HasPrefix(rest, "reject: "):
		postfixReject(e, rest[len("reject: "):])
	case strings.HasPrefix(rest, "client="):
		e.Set(fAction, "mail_received")
		hostIP(e, rest[len("client="):])
	case strings.HasPrefix(rest, "message-id="):
		e.Set("email.message_id", strings.Trim(rest[len("message-id="):], "<>"))
	case strings.HasPrefix(rest, "from=<"):
		e.Set(fAction, "mail_queued")
		kvComma(rest, func(k, v string) {
			switch k {
			case "from":
				setAngle(e, "email.from.address", v)
			case "size":
				setNum(e, "postfix.size", v)
			case "nrcpt":
				nr, _, _ := strings.Cut(v, " ")
				setNum(e, "postfix.nrcpt", nr)
			}
		})
	case strings.HasPrefix(rest, "to=<"):
		postfixDelivery(e, rest)
	case rest == "removed":
		e.Set(fAction, "mail_removed")
	}
	return true
}

// postfixDelivery parses "to=<x@y>, relay=…, delay=…, dsn=…, status=sent (…)".
func postfixDelivery(e *event.Event, s string) {
	kvComma(s, func(k, v string) {
		switch k {
		case "to":
			setAngle(e, "email.to.address", v)
		case "orig_to":
			setAngle(e, "postfix.orig_to", v)
		case "relay":
			e.Set("postfix.relay", v)
			// "mx.example.com[203.0.113.5]:25": the next hop is the destination.
			if h, rest, ok := strings.Cut(v, "["); ok {
				if ip, _, ok := strings.Cut(rest, "]"); ok {
					setAddr(e, fDstIP, "", ip)
				}
				if h != "" && h != "none" {
					e.Set(fDstDomain, h)
				}
			}
		case "dsn":
			e.Set("postfix.dsn", v)
		case "status":
			st, detail, _ := strings.Cut(v, " ")
			e.Set("postfix.status", st)
			if detail != "" {
				e.Set("postfix.status_detail", strings.TrimSuffix(strings.TrimPrefix(detail, "("), ")"))
			}
			switch st {
			case "sent":
				e.Set(fAction, "mail_delivered")
				e.Set(fOutcome, success)
			case "deferred":
				e.Set(fAction, "mail_deferred")
				e.Set(fOutcome, failure)
			case "bounced":
				e.Set(fAction, "mail_bounced")
				e.Set(fOutcome, failure)
			case "expired":
				e.Set(fAction, "mail_expired")
				e.Set(fOutcome, failure)
			}
		}
	})
}

// postfixReject parses "RCPT from host[IP]: 554 5.7.1 <x@y>: Relay access
// denied; from=<a@b> to=<c@d> proto=ESMTP helo=<h>".
func postfixReject(e *event.Event, s string) {
	e.Set(fCategory, catEmail)
	e.Set(fAction, "mail_rejected")
	e.Set(fOutcome, failure)
	_, rest, ok := strings.Cut(s, " from ")
	if !ok {
		return
	}
	hostIP(e, rest)
	if _, r, ok := strings.Cut(rest, "]: "); ok {
		reason, kv, _ := strings.Cut(r, "; ")
		e.Set("error.message", reason)
		kvSpace(kv, func(k, v string) {
			switch k {
			case "from":
				setAngle(e, "email.from.address", v)
			case "to":
				setAngle(e, "email.to.address", v)
			case "helo":
				e.Set("postfix.helo", strings.Trim(v, "<>"))
			}
		})
	}
}

// hostIP parses "host[IP]…": the IP goes to source.ip, a known host name to
// source.domain.
func hostIP(e *event.Event, s string) {
	host, rest, ok := strings.Cut(s, "[")
	if !ok {
		return
	}
	ip, _, ok := strings.Cut(rest, "]")
	if !ok {
		return
	}
	ip = strings.TrimPrefix(ip, "IPv6:")
	setAddr(e, fSrcIP, "", ip)
	if host != "unknown" && host != "" {
		e.Set(fSrcDomain, host)
	}
}

// setAngle stores an address written as <a@b>; the null sender <> is skipped.
func setAngle(e *event.Event, key, v string) {
	v = strings.TrimSuffix(strings.TrimPrefix(v, "<"), ">")
	if v != "" {
		e.Set(key, v)
	}
}

// isQueueID accepts postfix short queue ids (upper-case hex) and long ones
// (base-52 without vowels, with digits), so that words such as
// "statistics: …" are not taken for ids.
func isQueueID(s string) bool {
	if len(s) < 5 || len(s) > 20 {
		return false
	}
	hex, long, digit := true, true, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digit = true
		case c >= 'A' && c <= 'F':
			long = long && c != 'A' && c != 'E'
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
			hex = false
			switch c {
			case 'I', 'O', 'U', 'a', 'e', 'i', 'o', 'u':
				long = false
			}
		default:
			return false
		}
	}
	return hex || (long && digit && len(s) >= 10)
}
