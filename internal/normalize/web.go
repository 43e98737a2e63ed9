package normalize

import (
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/event"
)

// parseWeb handles nginx/apache lines that came through syslog (the
// program names the server): access lines first, then error lines.
func parseWeb(e *event.Event, msg, server string) bool {
	if looksLikeAccess(msg) && parseAccess(e, msg, server) {
		return true
	}
	if server == "nginx" {
		return parseNginxError(e, msg)
	}
	return parseApacheError(e, msg)
}

// looksLikeAccess is a cheap test for "… [dd/Mon/yyyy:… ] \"…" so that
// ordinary messages are rejected without a full parse.
func looksLikeAccess(s string) bool {
	b := strings.IndexByte(s, '[')
	if b < 2 || b > 300 || s[b-1] != ' ' || len(s) < b+28 {
		return false
	}
	return s[b+3] == '/' && s[b+7] == '/' && s[b+12] == ':'
}

// parseAccess parses the NCSA common and combined formats, optionally
// preceded by a virtual host ("%v" or "%v:%p") and followed by extra
// fields: [vhost[:port] ]client ident user [time] "request" status bytes
// ["referrer" "user agent" …]. server is "nginx", "apache" or "" (unknown).
// It reports whether the line had that shape; nothing is set otherwise.
func parseAccess(e *event.Event, line, server string) bool {
	b := strings.IndexByte(line, '[')
	if b < 6 || line[b-1] != ' ' {
		return false
	}
	head := line[:b-1]
	j := strings.LastIndexByte(head, ' ')
	if j < 0 {
		return false
	}
	user := head[j+1:]
	head = head[:j]
	k := strings.LastIndexByte(head, ' ')
	if k < 0 {
		return false
	}
	head = head[:k] // drop ident (RFC 1413), practically always "-"
	client, vhost := head, ""
	if m := strings.LastIndexByte(head, ' '); m >= 0 {
		client, vhost = head[m+1:], head[:m]
	}
	if client == "" {
		return false
	}
	rest := line[b+1:]
	te := strings.IndexByte(rest, ']')
	if te < 0 {
		return false
	}
	ts, ok := parseCLFTime(rest[:te])
	if !ok {
		return false
	}
	rest = rest[te+1:]
	if len(rest) < 2 || rest[0] != ' ' || rest[1] != '"' {
		return false
	}
	req, rest, ok := cutQuoted(rest[1:])
	if !ok {
		return false
	}
	rest = strings.TrimLeft(rest, " ")
	statusS, rest, _ := strings.Cut(rest, " ")
	status, ok := num(statusS)
	if !ok {
		return false
	}
	bytesS, rest, _ := strings.Cut(rest, " ")
	var bytes float64
	if bytesS != "-" {
		if bytes, ok = num(bytesS); !ok {
			return false
		}
	}
	var referrer, agent string
	if rest != "" {
		if referrer, rest, ok = cutQuoted(rest); ok {
			rest = strings.TrimLeft(rest, " ")
			agent, _, _ = cutQuoted(rest)
		}
	}

	// The line has the shape: from here on nothing can fail.
	e.Time = ts
	switch server {
	case "nginx":
		setDataset(e, "nginx.access", "nginx")
	case "apache":
		setDataset(e, "apache.access", "apache")
	default:
		setDataset(e, "web.access", "web")
	}
	e.Set(fCategory, catWeb)
	e.Set(fAction, "http_request")
	setAddr(e, fSrcIP, fSrcDomain, client)
	if user != "-" && user != "" {
		e.Set(fUser, user)
	}
	if vhost != "" {
		if h, p, ok := strings.Cut(vhost, ":"); ok && strings.IndexByte(p, ':') < 0 {
			e.Set("url.domain", h)
			setNum(e, fDstPort, p)
		} else {
			e.Set("url.domain", vhost)
		}
	}
	if method, r, ok := strings.Cut(req, " "); ok && isMethod(method) {
		e.Set("http.request.method", method)
		uri := r
		if i := strings.LastIndex(r, " HTTP/"); i >= 0 {
			uri = r[:i]
			e.Set("http.version", r[i+len(" HTTP/"):])
		}
		e.Set("url.original", uri)
		path, query, hasQ := strings.Cut(uri, "?")
		e.Set("url.path", path)
		if hasQ {
			e.Set("url.query", query)
		}
	} else if req != "-" && req != "" {
		// Garbage request lines (TLS handshakes sent to a plain port, scanners).
		e.Set("url.original", req)
	}
	e.Set("http.response.status_code", status)
	e.Set("http.response.body.bytes", bytes)
	if status >= 400 {
		e.Set(fOutcome, failure)
	} else {
		e.Set(fOutcome, success)
	}
	if referrer != "" && referrer != "-" {
		e.Set("http.request.referrer", referrer)
	}
	if agent != "" && agent != "-" {
		e.Set("user_agent.original", agent)
	}
	return true
}

// isMethod accepts an HTTP method token (upper-case letters, '-' and '_').
func isMethod(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// cutQuoted expects s to start with '"' and returns the text up to the
// closing quote (backslash escapes, which nginx and apache write for quotes
// inside values, are skipped over but kept) and what follows.
func cutQuoted(s string) (inner, rest string, ok bool) {
	if len(s) == 0 || s[0] != '"' {
		return "", s, false
	}
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return s[1:i], s[i+1:], true
		}
	}
	return "", s, false
}

// parseCLFTime parses "17/May/2015:10:05:03 +0000" by hand: time.Parse
// with a numeric zone allocates a FixedZone per call.
func parseCLFTime(s string) (time.Time, bool) {
	if len(s) != 26 || s[2] != '/' || s[6] != '/' || s[11] != ':' || s[14] != ':' || s[17] != ':' || s[20] != ' ' {
		return time.Time{}, false
	}
	day, ok1 := num(s[0:2])
	year, ok2 := num(s[7:11])
	hh, ok3 := num(s[12:14])
	mm, ok4 := num(s[15:17])
	ss, ok5 := num(s[18:20])
	zh, ok6 := num(s[22:24])
	zm, ok7 := num(s[24:26])
	mon := month(s[3:6])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || mon == 0 || day < 1 || day > 31 ||
		hh > 23 || mm > 59 || ss > 60 || zh > 23 || zm > 59 || (s[21] != '+' && s[21] != '-') {
		return time.Time{}, false
	}
	off := time.Duration(zh)*time.Hour + time.Duration(zm)*time.Minute
	if s[21] == '-' {
		off = -off
	}
	t := time.Date(int(year), mon, int(day), int(hh), int(mm), int(ss), 0, time.UTC).Add(-off)
	return t, true
}

func month(s string) time.Month {
	switch s {
	case "Jan":
		return time.January
	case "Feb":
		return time.February
	case "Mar":
		return time.March
	case "Apr":
		return time.April
	case "May":
		return time.May
	case "Jun":
		return time.June
	case "Jul":
		return time.July
	case "Aug":
		return time.August
	case "Sep":
		return time.September
	case "Oct":
		return time.October
	case "Nov":
		return time.November
	case "Dec":
		return time.December
	}
	return 0
}

// parseNginxError parses "2024/01/02 03:04:05 [error] 123#0: *1 message,
// client: IP, server: name, request: \"GET / HTTP/1.1\", host: \"h\"".
// The line's time has no zone; it is read as UTC and used only when the
// event has no time yet (the syslog header's time wins).
func parseNginxError(e *event.Event, line string) bool {
	if len(line) < 22 || line[4] != '/' || line[7] != '/' || line[10] != ' ' || line[19] != ' ' || line[20] != '[' {
		return false
	}
	level, rest, ok := strings.Cut(line[21:], "] ")
	if !ok || level == "" || strings.IndexByte(level, ' ') >= 0 {
		return false
	}
	if e.Time.IsZero() {
		if t, err := time.Parse("2006/01/02 15:04:05", line[:19]); err == nil {
			e.Time = t
		}
	}
	setDataset(e, "nginx.error", "nginx")
	e.Set(fCategory, catWeb)
	e.Set(fLogLevel, level)
	// "123#0: " is pid#thread.
	if pid, r, ok := leadingNum(rest); ok && strings.HasPrefix(r, "#") {
		e.Set("process.pid", pid)
		if _, r2, ok := strings.Cut(r, ": "); ok {
			rest = r2
		}
	}
	// "*1 " is the connection number.
	if strings.HasPrefix(rest, "*") {
		if _, r, ok := leadingNum(rest[1:]); ok && strings.HasPrefix(r, " ") {
			rest = r[1:]
		}
	}
	text, extra, _ := strings.Cut(rest, ", client: ")
	e.Set(fMessage, text)
	if extra != "" {
		nginxExtras(e, "client: "+extra)
	}
	return true
}

// nginxExtras reads ", "-separated "key: value" pairs whose values may be
// quoted (and then contain ", ").
func nginxExtras(e *event.Event, s string) {
	for s != "" {
		k, r, ok := strings.Cut(s, ": ")
		if !ok {
			return
		}
		var v string
		if strings.HasPrefix(r, "\"") {
			if v, r, ok = cutQuoted(r); !ok {
				v, r = r, ""
			}
			r = strings.TrimPrefix(r, ", ")
		} else {
			v, r, _ = strings.Cut(r, ", ")
		}
		s = r
		switch k {
		case "client":
			setAddr(e, fSrcIP, fSrcDomain, v)
		case "server":
			e.Set("nginx.server_name", v)
		case "host":
			e.Set("url.domain", v)
		case "referrer":
			e.Set("http.request.referrer", v)
		case "upstream":
			e.Set("nginx.upstream", v)
		case "request":
			if method, r, ok := strings.Cut(v, " "); ok && isMethod(method) {
				e.Set("http.request.method", method)
				if i := strings.LastIndex(r, " HTTP/"); i >= 0 {
					r = r[:i]
				}
				e.Set("url.original", r)
				path, _, _ := strings.Cut(r, "?")
				e.Set("url.path", path)
			}
		}
	}
}

// parseApacheError parses apache 2.4 "[Tue Jan 02 03:04:05.123456 2024]
// [core:error] [pid 123:tid 456] [client 1.2.3.4:5678] AH00126: message"
// and the 2.2 form "[Tue Jan 02 03:04:05 2024] [error] [client 1.2.3.4]
// message". Without a time (apache logging to syslog) the line starts at
// the level. It needs at least the level bracket.
func parseApacheError(e *event.Event, line string) bool {
	s := line
	var level, module, client string
	var pid float64
	var ts string
	for strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		b := s[1:end]
		s = strings.TrimLeft(s[end+1:], " ")
		switch {
		case len(b) >= 24 && b[3] == ' ' && b[7] == ' ' && ts == "" && level == "":
			ts = b
		case strings.HasPrefix(b, "pid "):
			p, _, _ := leadingNum(b[len("pid "):])
			pid = p
		case strings.HasPrefix(b, "client "):
			client = b[len("client "):]
		case strings.HasPrefix(b, "remote "):
			if client == "" {
				client = b[len("remote "):]
			}
		case level == "" && isLevelBracket(b):
			if m, l, ok := strings.Cut(b, ":"); ok {
				module, level = m, l
			} else {
				level = b
			}
		default:
			// An unknown bracket ends the header: it is part of the message.
			s = "[" + b + "] " + s
			goto done
		}
	}
done:
	if level == "" {
		return false
	}
	if ts != "" && e.Time.IsZero() {
		layout := "Mon Jan 02 15:04:05 2006"
		if strings.IndexByte(ts, '.') >= 0 {
			layout = "Mon Jan 02 15:04:05.000000 2006"
		}
		if t, err := time.Parse(layout, ts); err == nil {
			e.Time = t
		}
	}
	setDataset(e, "apache.error", "apache")
	e.Set(fCategory, catWeb)
	e.Set(fLogLevel, level)
	if module != "" {
		e.Set("apache.module", module)
	}
	if pid > 0 {
		e.Set("process.pid", pid)
	}
	if client != "" {
		if h, p, ok := cutLast(client, ':'); ok && isIP(h) {
			e.Set(fSrcIP, h)
			setNum(e, fSrcPort, p)
		} else {
			setAddr(e, fSrcIP, fSrcDomain, client)
		}
	}
	// "AH00126: " is apache's message code.
	if len(s) > 9 && s[0] == 'A' && s[1] == 'H' && s[7] == ':' {
		if _, ok := num(s[2:7]); ok {
			e.Set("error.code", s[:7])
		}
	}
	e.Set(fMessage, s)
	return true
}

// isLevelBracket accepts "error", "core:error", "proxy_fcgi:warn" …
func isLevelBracket(b string) bool {
	_, l, ok := strings.Cut(b, ":")
	if !ok {
		l = b
	}
	switch {
	case strings.HasPrefix(l, "trace"):
		return true
	}
	switch l {
	case "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug":
		return true
	}
	return false
}

func cutLast(s string, c byte) (before, after string, ok bool) {
	i := strings.LastIndexByte(s, c)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}
