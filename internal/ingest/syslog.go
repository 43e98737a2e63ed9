package ingest

import (
	"bytes"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	syslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/rfc3164"
	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/nocsoc/nocsoc/internal/event"
)

// msgParser parses single syslog messages. The go-syslog machines keep
// per-parse state, so each reading goroutine owns its own msgParser.
type msgParser struct {
	p3, p5 syslog.Machine
	loc    *time.Location
}

func newMsgParser(loc *time.Location) *msgParser {
	if loc == nil {
		loc = time.Local
	}
	return &msgParser{
		// Best effort: a partly valid message still yields what could be
		// read. Optional PRI and RFC 3339 stamps let the same parser read
		// local files written by rsyslog and journald.
		p3: rfc3164.NewParser(rfc3164.WithBestEffort(), rfc3164.WithOptionalPriority(),
			rfc3164.WithRFC3339(), rfc3164.WithLenientDay()),
		p5:  rfc5424.NewParser(rfc5424.WithBestEffort()),
		loc: loc,
	}
}

// frameInfo carries what the framing layer learnt about a message.
type frameInfo struct {
	// origLen is the length of the message before truncation (0: not
	// truncated).
	origLen int
	maxLine int
	// note is a framing problem (incomplete frame, bad header …).
	note string
}

// sanitize returns the message as a valid UTF-8 string without NUL bytes
// and the notes describing what had to be replaced.
func sanitize(b []byte) (string, []string) {
	var notes []string
	hasNUL := bytes.IndexByte(b, 0) >= 0
	valid := utf8.Valid(b)
	if !hasNUL && valid {
		return string(b), nil
	}
	s := string(b)
	if !valid {
		notes = append(notes, "invalid UTF-8 replaced with U+FFFD")
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if hasNUL {
		notes = append(notes, "NUL bytes replaced with U+FFFD")
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return s, notes
}

// parse turns one syslog message into an event. raw is not retained.
// Every message becomes an event: what cannot be parsed is kept with
// ParseError set and message = the raw line.
func (p *msgParser) parse(raw []byte, fi frameInfo, now time.Time, input, name, peer string) event.Event {
	e := event.Event{
		Received: now,
		Input:    input,
		// Room for what the syslog header and a normalizer set (an access
		// log line has 24 fields): growing the map as they come was a
		// fifth of the pipeline's allocations.
		Fields: make(map[string]any, 28),
	}
	clean, notes := sanitize(raw)
	if notes == nil {
		e.Raw = clean // the same bytes; no second copy
	} else {
		e.Raw = string(raw) // as received
	}
	if fi.note != "" {
		notes = append([]string{fi.note}, notes...)
	}
	if fi.origLen > 0 {
		notes = append([]string{"truncated: line of " + strconv.Itoa(fi.origLen) + " bytes exceeds " + strconv.Itoa(fi.maxLine)}, notes...)
	}
	e.Fields["input.name"] = name
	if peer != "" {
		e.Fields["log.source.address"] = peer
	}

	var msg syslog.Message
	var err error
	// The parsers read clean's bytes in place: go-syslog (v4.6.0) never
	// writes to its input and copies every string it returns, so a view
	// of the immutable string is safe, and spares a copy of every line.
	data := unsafe.Slice(unsafe.StringData(clean), len(clean))
	if is5424(data) {
		msg, err = p.p5.Parse(data)
		if err != nil || msg == nil || !msg.Valid() {
			// Some senders put "1 " after the PRI without speaking 5424;
			// give the 3164 reader a chance before giving up.
			if m3, err3 := p.p3.Parse(data); err3 == nil && m3 != nil {
				msg, err = m3, nil
			}
		}
	} else {
		msg, err = p.p3.Parse(data)
	}
	if msg != nil {
		p.fill(&e, msg, now)
	}
	if err != nil || msg == nil {
		if err != nil {
			notes = append(notes, "syslog: "+err.Error())
		} else {
			notes = append(notes, "syslog: not a syslog message")
		}
		// The best-effort parse may have read the PRI or a timestamp;
		// the message itself is the whole line, so nothing is hidden.
		e.Fields["message"] = clean
	}
	if e.Time.IsZero() {
		e.Time = now
	}
	if e.Host == "" && peer != "" {
		if h, _, err := splitHostPort(peer); err == nil {
			e.Host = h
		}
	}
	if len(notes) > 0 {
		e.ParseError = strings.Join(notes, "; ")
	}
	return e
}

func splitHostPort(s string) (string, string, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return s, "", nil
	}
	h := strings.TrimSuffix(strings.TrimPrefix(s[:i], "["), "]")
	return h, s[i+1:], nil
}

// is5424 reports whether b starts with "<PRI>1 ".
func is5424(b []byte) bool {
	if len(b) < 5 || b[0] != '<' {
		return false
	}
	i := 1
	for i < len(b) && i <= 4 && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i > 1 && i+2 < len(b) && b[i] == '>' && b[i+1] == '1' && b[i+2] == ' '
}

// The syslog header's numbers and names as field values, boxed once:
// storing a float64 or a string in the fields map allocates its box, and
// the header's are the same few values event after event. boxedNumbers
// covers every priority (0-191).
var (
	boxedNumbers       [192]any
	boxedSeverityNames [len(event.SyslogSeverityNames)]any
	boxedFacilityNames [len(event.SyslogFacilityNames)]any
)

func init() {
	for i := range boxedNumbers {
		boxedNumbers[i] = float64(i)
	}
	for i, n := range event.SyslogSeverityNames {
		boxedSeverityNames[i] = n
	}
	for i, n := range event.SyslogFacilityNames {
		boxedFacilityNames[i] = n
	}
}

func (p *msgParser) fill(e *event.Event, msg syslog.Message, now time.Time) {
	var base *syslog.Base
	var sd *map[string]map[string]string
	switch m := msg.(type) {
	case *rfc5424.SyslogMessage:
		base, sd = &m.Base, m.StructuredData
	case *rfc3164.SyslogMessage:
		base = &m.Base
	default:
		return
	}
	f := e.Fields
	if base.Priority != nil {
		if pri := int(*base.Priority); pri < len(boxedNumbers) {
			f["log.syslog.priority"] = boxedNumbers[pri]
		} else {
			f["log.syslog.priority"] = float64(pri)
		}
	}
	if base.Severity != nil && int(*base.Severity) < len(event.SyslogSeverityNames) {
		f["log.syslog.severity.code"] = boxedNumbers[*base.Severity]
		f["log.syslog.severity.name"] = boxedSeverityNames[*base.Severity]
	}
	if base.Facility != nil && int(*base.Facility) < len(event.SyslogFacilityNames) {
		f["log.syslog.facility.code"] = boxedNumbers[*base.Facility]
		f["log.syslog.facility.name"] = boxedFacilityNames[*base.Facility]
	}
	if base.Timestamp != nil {
		e.Time = p.fixTime(*base.Timestamp, now)
	}
	if base.Hostname != nil {
		e.Host = *base.Hostname
	}
	if base.Appname != nil {
		f["process.name"] = *base.Appname
	}
	if base.ProcID != nil {
		f["log.syslog.procid"] = *base.ProcID
		if pid, err := strconv.ParseUint(*base.ProcID, 10, 32); err == nil {
			f["process.pid"] = float64(pid)
		}
	}
	if base.MsgID != nil {
		f["log.syslog.msgid"] = *base.MsgID
	}
	if base.Message != nil {
		f["message"] = *base.Message
	} else {
		f["message"] = ""
	}
	if sd != nil {
		for id, params := range *sd {
			if len(params) == 0 {
				f["log.syslog.structured_data."+id] = true
			}
			for k, v := range params {
				f["log.syslog.structured_data."+id+"."+k] = v
			}
		}
	}
}

// fixTime gives RFC 3164 timestamps, which have neither year nor zone, the
// configured zone and the year that puts them closest to now: a December
// message read in early January belongs to last year, a message from a
// sender whose clock runs ahead across new year to next year.
func (p *msgParser) fixTime(t, now time.Time) time.Time {
	if t.Year() != 0 {
		return t
	}
	nowL := now.In(p.loc)
	best := time.Time{}
	var bestD time.Duration
	for _, y := range [3]int{nowL.Year() - 1, nowL.Year(), nowL.Year() + 1} {
		c := time.Date(y, t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), p.loc)
		d := c.Sub(now)
		if d < 0 {
			d = -d
		}
		if best.IsZero() || d < bestD {
			best, bestD = c, d
		}
	}
	return best
}
