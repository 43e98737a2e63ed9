package normalize

import (
	"strings"

	"github.com/nocsoc/nocsoc/internal/event"
)

// parseSSHD handles OpenSSH's log lines (sshd, and sshd-session/sshd-auth
// since OpenSSH 9.8). It reports whether the line was recognised.
func parseSSHD(e *event.Event, msg string) bool {
	switch {
	case strings.HasPrefix(msg, "Accepted "):
		return sshLogin(e, msg[len("Accepted "):], success)
	case strings.HasPrefix(msg, "Failed "):
		return sshLogin(e, msg[len("Failed "):], failure)
	case strings.HasPrefix(msg, "Invalid user "):
		rest := msg[len("Invalid user "):]
		i := strings.LastIndex(rest, " from ")
		if i < 0 {
			return false
		}
		sshAuthCommon(e, "ssh_invalid_user")
		e.Set(fOutcome, failure)
		e.Set(fUser, rest[:i])
		e.Set(fUserInvalid, true)
		sshAddr(e, rest[i+len(" from "):])
		return true
	case strings.HasPrefix(msg, "Connection closed by "):
		return sshClosed(e, msg[len("Connection closed by "):])
	case strings.HasPrefix(msg, "Disconnected from "):
		return sshClosed(e, msg[len("Disconnected from "):])
	case strings.HasPrefix(msg, "Received disconnect from "):
		sshAuthCommon(e, "ssh_disconnect")
		sshAddr(e, msg[len("Received disconnect from "):])
		return true
	case strings.HasPrefix(msg, "error: maximum authentication attempts exceeded for "):
		rest := msg[len("error: maximum authentication attempts exceeded for "):]
		i := strings.LastIndex(rest, " from ")
		if i < 0 {
			return false
		}
		sshAuthCommon(e, "ssh_max_auth_exceeded")
		e.Set(fOutcome, failure)
		sshUser(e, rest[:i])
		sshAddr(e, rest[i+len(" from "):])
		return true
	case strings.HasPrefix(msg, "Disconnecting "):
		// "Disconnecting invalid user bob 1.2.3.4 port 22: Too many authentication failures [preauth]"
		head, reason, ok := strings.Cut(msg[len("Disconnecting "):], ": ")
		if !ok || !strings.HasPrefix(reason, "Too many authentication failures") {
			return false
		}
		if !sshClosed(e, head) {
			return false
		}
		e.Set(fAction, "ssh_max_auth_exceeded")
		e.Set(fOutcome, failure)
		return true
	case strings.HasPrefix(msg, "Did not receive identification string from "):
		sshAuthCommon(e, "ssh_no_identification")
		sshAddr(e, msg[len("Did not receive identification string from "):])
		return true
	case strings.HasPrefix(msg, "Unable to negotiate with "):
		sshAuthCommon(e, "ssh_negotiation_failed")
		e.Set(fOutcome, failure)
		sshAddr(e, msg[len("Unable to negotiate with "):])
		return true
	case strings.HasPrefix(msg, "PAM ") && strings.Contains(msg, " more authentication failure"):
		// "PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=1.2.3.4  user=root"
		n, _, _ := leadingNum(msg[len("PAM "):])
		_, kv, _ := strings.Cut(msg, "; ")
		sshAuthCommon(e, "authentication_failure")
		e.Set(fOutcome, failure)
		pamKV(e, kv)
		if n > 0 {
			e.Set("log.syslog.repeated", n)
		}
		return true
	}
	return false
}

func sshAuthCommon(e *event.Event, action string) {
	e.Set(fCategory, catAuth)
	e.Set(fAction, action)
}

// sshLogin parses what follows "Accepted " or "Failed ":
// "password for [invalid user ]U from IP port P ssh2[: RSA SHA256:…]".
func sshLogin(e *event.Event, rest, outcome string) bool {
	method, rest, ok := strings.Cut(rest, " for ")
	if !ok || strings.IndexByte(method, ' ') >= 0 {
		return false
	}
	// The user name comes from the client and may contain anything,
	// " from " included; the address part never does.
	i := strings.LastIndex(rest, " from ")
	if i < 0 {
		return false
	}
	sshAuthCommon(e, "ssh_login")
	e.Set(fOutcome, outcome)
	e.Set("ssh.method", method)
	sshUser(e, rest[:i])
	sshAddr(e, rest[i+len(" from "):])
	return true
}

// sshUser sets user.name from "[invalid user |authenticating user |user ]U".
func sshUser(e *event.Event, s string) {
	if u, ok := strings.CutPrefix(s, "invalid user "); ok {
		e.Set(fUser, u)
		e.Set(fUserInvalid, true)
		return
	}
	if u, ok := strings.CutPrefix(s, "authenticating user "); ok {
		s = u
	} else if u, ok := strings.CutPrefix(s, "user "); ok {
		s = u
	}
	e.Set(fUser, s)
}

// sshAddr parses "IP[ port P][…]" or "IP port P:11: …".
func sshAddr(e *event.Event, s string) {
	ip, rest, _ := strings.Cut(s, " ")
	if strings.HasSuffix(ip, ":") { // "Unable to negotiate with 1.2.3.4: …" on old versions
		ip = ip[:len(ip)-1]
	}
	setAddr(e, fSrcIP, fSrcDomain, ip)
	if p, ok := strings.CutPrefix(rest, "port "); ok {
		if n, _, ok := leadingNum(p); ok {
			e.Set(fSrcPort, n)
		}
	}
}

// sshClosed parses "[invalid user |authenticating user |user ]U IP port P[ [preauth]]"
// or "IP port P[ [preauth]]".
func sshClosed(e *event.Event, s string) bool {
	i := strings.LastIndex(s, " port ")
	if i < 0 {
		// Old versions: "Connection closed by 1.2.3.4 [preauth]".
		ip, _, _ := strings.Cut(s, " ")
		if !isIP(ip) {
			return false
		}
		sshAuthCommon(e, "ssh_disconnect")
		e.Set(fSrcIP, ip)
		return true
	}
	head := s[:i]
	ip := head
	if j := strings.LastIndexByte(head, ' '); j >= 0 {
		ip = head[j+1:]
		sshUser(e, head[:j])
	}
	sshAuthCommon(e, "ssh_disconnect")
	setAddr(e, fSrcIP, fSrcDomain, ip)
	if n, _, ok := leadingNum(s[i+len(" port "):]); ok {
		e.Set(fSrcPort, n)
	}
	return true
}
