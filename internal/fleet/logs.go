package fleet

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	syslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/rfc3164"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/event"
	"github.com/nocsoc/nocsoc/internal/normalize"
	"github.com/nocsoc/nocsoc/internal/store"
)

// InputAgent is the Input of events shipped by agents.
const InputAgent = "agent"

// applyLogs turns shipped log lines into events of the SOC pipeline: host
// is the endpoint's hostname, input "agent", and the line is normalized
// (sshd, sudo, web access logs …) so that Sigma rules see the same fields
// as for syslog input. The whole batch is written in one call: the batch
// is recorded as applied only after the sink took it.
func (s *Service) applyLogs(ctx context.Context, e store.Endpoint, b agentproto.Batch) error {
	if len(b.Logs) == 0 {
		return nil
	}
	if err := validateLogs(b.Logs); err != nil {
		return err
	}
	if s.o.Events == nil {
		return nil
	}
	now := s.o.Now().UTC()
	p := rfc3164.NewParser(rfc3164.WithBestEffort(), rfc3164.WithOptionalPriority(), rfc3164.WithRFC3339(), rfc3164.WithLenientDay())
	evs := make([]event.Event, len(b.Logs))
	for i, r := range b.Logs {
		evs[i] = LogEvent(p, e, r, now)
	}
	if err := s.o.Events.Write(ctx, evs); err != nil {
		return fmt.Errorf("log events: %w", err)
	}
	return nil
}

func validateLogs(recs []agentproto.LogRecord) error {
	if len(recs) > agentproto.MaxLogRecords {
		return &store.FieldError{Field: "logs", Reason: fmt.Sprintf("at most %d records per batch (got %d)", agentproto.MaxLogRecords, len(recs))}
	}
	for i, r := range recs {
		switch {
		case r.Source != agentproto.LogSourceFile && r.Source != agentproto.LogSourceJournal:
			return &store.FieldError{Field: fmt.Sprintf("logs[%d].source", i), Reason: fmt.Sprintf("must be %q or %q (got %q)", agentproto.LogSourceFile, agentproto.LogSourceJournal, r.Source)}
		case len(r.Line) > agentproto.MaxLogLine:
			return &store.FieldError{Field: fmt.Sprintf("logs[%d].line", i), Reason: fmt.Sprintf("at most %d bytes (got %d)", agentproto.MaxLogLine, len(r.Line))}
		case len(r.Path) > 4096 || len(r.Unit) > 512 || len(r.Identifier) > 512:
			return &store.FieldError{Field: fmt.Sprintf("logs[%d]", i), Reason: "path, unit or identifier too long"}
		case r.Priority != nil && (*r.Priority < 0 || *r.Priority > 7):
			return &store.FieldError{Field: fmt.Sprintf("logs[%d].priority", i), Reason: fmt.Sprintf("must be 0-7 (got %d)", *r.Priority)}
		}
	}
	return nil
}

// LogEvent builds the event of one shipped record. File lines are read as
// syslog lines when they look like one (rsyslog's files: auth.log,
// syslog), else as plain lines (web access logs are recognised by shape);
// journal entries carry their program, pid and priority already. p is a
// RFC 3164 parser owned by the caller (parsers keep per-parse state).
func LogEvent(p syslog.Machine, e store.Endpoint, r agentproto.LogRecord, now time.Time) event.Event {
	line := strings.ToValidUTF8(strings.ReplaceAll(r.Line, "\x00", "\uFFFD"), "\uFFFD")
	ts := r.Time
	if ts.IsZero() || ts.After(now.Add(24*time.Hour)) {
		ts = now
	}
	ev := event.Event{Time: ts.UTC(), Received: now, Host: e.Hostname, Input: InputAgent, Raw: r.Line, Fields: make(map[string]any, 12)}
	ev.Fields["agent.id"] = e.ID
	if !utf8.ValidString(r.Line) {
		ev.ParseError = "invalid UTF-8 replaced with U+FFFD"
	}
	if r.Truncated > 0 {
		note := "truncated: line of " + strconv.Itoa(r.Truncated) + " bytes exceeds " + strconv.Itoa(agentproto.MaxLogLine)
		if ev.ParseError != "" {
			note += "; " + ev.ParseError
		}
		ev.ParseError = note
	}
	switch r.Source {
	case agentproto.LogSourceJournal:
		ev.Fields["event.module"] = "journald"
		ev.Fields["message"] = line
		if r.Identifier != "" {
			ev.Fields["process.name"] = r.Identifier
		}
		if r.PID > 0 {
			ev.Fields["process.pid"] = float64(r.PID)
		}
		if r.Unit != "" {
			ev.Fields["systemd.unit"] = r.Unit
		}
		if r.Priority != nil {
			ev.Fields["log.syslog.severity.code"] = float64(*r.Priority)
			ev.Fields["log.syslog.severity.name"] = event.SyslogSeverityNames[*r.Priority]
		}
		normalize.Normalize(&ev)
	default:
		ev.Fields["log.file.path"] = r.Path
		if fillSyslog(p, &ev, line) {
			normalize.Normalize(&ev)
		} else {
			ev.Fields["message"] = line
			normalize.NormalizeLine(&ev, normalize.KindAuto)
		}
	}
	return ev
}

// fillSyslog reads a syslog-formatted file line ("Nov 27 08:00:01 web1
// sshd[812]: …" or with an RFC 3339 stamp) into ev; it reports false when
// the line has no program tag, i.e. is not a syslog line. The endpoint's
// hostname stays the event's host: the agent is the authority on where
// the line came from.
func fillSyslog(p syslog.Machine, ev *event.Event, line string) bool {
	msg, err := p.Parse([]byte(line))
	if err != nil && msg == nil {
		return false
	}
	m, ok := msg.(*rfc3164.SyslogMessage)
	if !ok || m.Appname == nil || *m.Appname == "" || m.Message == nil {
		return false
	}
	f := ev.Fields
	f["process.name"] = *m.Appname
	f["message"] = *m.Message
	if m.ProcID != nil {
		if pid, err := strconv.ParseUint(*m.ProcID, 10, 32); err == nil {
			f["process.pid"] = float64(pid)
		}
	}
	if m.Severity != nil && int(*m.Severity) < len(event.SyslogSeverityNames) {
		f["log.syslog.severity.code"] = float64(*m.Severity)
		f["log.syslog.severity.name"] = event.SyslogSeverityNames[*m.Severity]
	}
	// A stamp with a year (RFC 3339) is the line's own time; a classic
	// stamp has neither year nor zone, and the agent read the line moments
	// after it was written, so the read time is the better guess.
	if m.Timestamp != nil && m.Timestamp.Year() != 0 {
		ev.Time = m.Timestamp.UTC()
	}
	if m.Hostname != nil && *m.Hostname != "" {
		f["log.syslog.hostname"] = *m.Hostname
	}
	return true
}
