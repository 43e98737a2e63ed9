package eventstore

import (
	"math"
	"strconv"
	"strings"

	"github.com/nocsoc/nocsoc/internal/event"
)

// eventsPackedSchema is migration 5: the packed column says which values a
// row stores in a derived form instead of spelling them out. A syslog
// event's raw line is its header followed by its message, and half of its
// fields repeat others (the severity and facility codes and names are the
// priority, log.syslog.procid is process.pid, input.name is input); spelt
// out they were 40% of the bytes of a row, and DuckDB's append costs about
// in proportion to the bytes (its string statistics, dictionary and FSST
// analysis, WAL and checkpoint writes). Rows written before have packed 0
// and hold everything spelt out. Reads restore every derived value
// (scanEvent), and queries see them through eventColumns, so an event
// reads back exactly as it was appended.
const eventsPackedSchema = `ALTER TABLE events ADD COLUMN packed INTEGER DEFAULT 0;`

// Bits of the packed column.
const (
	// packRawSuffix: the raw column holds raw without its last part, which
	// equals the message column (raw = raw || message).
	packRawSuffix = 1 << iota
	// packRawIsMessage: the raw column is NULL because the message column
	// holds raw (message_from_raw).
	packRawIsMessage
	// packSyslogPri: log.syslog.severity.code and .name and
	// log.syslog.facility.code and .name are not in fields: they are
	// derived from log.syslog.priority (which is).
	packSyslogPri
	// packProcID: log.syslog.procid is not in fields: it is process.pid
	// (which is) in decimal.
	packProcID
	// packInputName: input.name is not in fields: it equals the input
	// column.
	packInputName
	// packURLOriginal: url.original is not in fields: it equals url.path
	// (stored in its column).
	packURLOriginal
)

// Field names of the derived values.
const (
	fSyslogPri    = "log.syslog.priority"
	fSeverityCode = "log.syslog.severity.code"
	fSeverityName = "log.syslog.severity.name"
	fFacilityCode = "log.syslog.facility.code"
	fFacilityName = "log.syslog.facility.name"
	fProcID       = "log.syslog.procid"
	fProcessPID   = "process.pid"
	fInputName    = "input.name"
	fURLOriginal  = "url.original"
	fURLPath      = "url.path"
	maxSyslogPri  = 191
	maxDerivedPID = math.MaxUint32
)

// derivedBits reports which of the packSyslogPri … packURLOriginal
// derivations hold exactly for an event whose fields fs noted (input is
// its Input): the derived value would read back identical, in type and
// value. urlPathStored says url.path went to its column.
func (fs *fieldSlots) derivedBits(input string, urlPathStored bool) int32 {
	var bits int32
	if p, ok := fs.val[slotSyslogPri].(float64); ok && p >= 0 && p <= maxSyslogPri && p == math.Trunc(p) {
		pi := int(p)
		sev, fac := pi%8, pi/8
		if sc, ok := fs.val[slotSeverityCode].(float64); ok && sc == float64(sev) &&
			fs.val[slotSeverityName] == event.SyslogSeverityNames[sev] {
			if fc, ok := fs.val[slotFacilityCode].(float64); ok && fc == float64(fac) &&
				fs.val[slotFacilityName] == event.SyslogFacilityNames[fac] {
				bits |= packSyslogPri
			}
		}
	}
	if id, ok := fs.val[slotProcID].(string); ok {
		var digits [20]byte // compared without allocating: this runs for every event
		if pid, ok := fs.val[slotProcessPID].(float64); ok && pid >= 0 && pid <= maxDerivedPID && pid == math.Trunc(pid) &&
			id == string(strconv.AppendUint(digits[:0], uint64(pid), 10)) {
			bits |= packProcID
		}
	}
	if input != "" {
		if n, ok := fs.val[slotInputName].(string); ok && n == input && n == validUTF8(n) {
			bits |= packInputName
		}
	}
	if urlPathStored {
		if u, ok := fs.val[slotURLOriginal].(string); ok && u == fs.val[urlPathIndex] {
			bits |= packURLOriginal
		}
	}
	return bits
}

// splitRaw returns what the raw column stores for raw and the bit that
// says how (packRawSuffix or packRawIsMessage), or raw and 0. msg is the
// message column's value, fromRaw whether it holds raw.
func splitRaw(raw, msg string, fromRaw bool) (string, int32) {
	switch {
	case fromRaw:
		return "", packRawIsMessage
	case msg != "" && strings.HasSuffix(raw, msg):
		return raw[:len(raw)-len(msg)], packRawSuffix
	}
	return raw, 0
}

// restorePacked puts back what bits left out of a row: raw from the raw
// column (rawCol) and the message column (msg), and the derived fields
// into e.Fields (absent there, since the JSON left them out).
func restorePacked(e *event.Event, bits int32, rawCol, msg string) {
	switch {
	case bits&packRawSuffix != 0:
		e.Raw = rawCol + msg
	case bits&packRawIsMessage != 0:
		e.Raw = msg
	}
	if bits&^(packRawSuffix|packRawIsMessage) == 0 {
		return
	}
	if e.Fields == nil {
		e.Fields = map[string]any{}
	}
	f := e.Fields
	if bits&packSyslogPri != 0 {
		if p, ok := f[fSyslogPri].(float64); ok {
			sev, fac := int(p)%8, int(p)/8
			f[fSeverityCode] = float64(sev)
			f[fSeverityName] = event.SyslogSeverityNames[sev]
			f[fFacilityCode] = float64(fac)
			f[fFacilityName] = event.SyslogFacilityNames[fac]
		}
	}
	if bits&packProcID != 0 {
		if pid, ok := f[fProcessPID].(float64); ok {
			f[fProcID] = strconv.FormatUint(uint64(pid), 10)
		}
	}
	if bits&packInputName != 0 {
		f[fInputName] = e.Input
	}
	if bits&packURLOriginal != 0 {
		if u, ok := f[fURLPath].(string); ok {
			f[fURLOriginal] = u
		}
	}
}

// packedColumn is the SQL of a field that may be stored derived: the
// derivation where the row's bit is set, else the stored JSON value (the
// text json_extract_string gives, as for any field in fields).
func packedColumn(field string) (string, bool) {
	js := func(f string) string { return `json_extract_string(fields, '$."` + f + `"')` }
	pri := `TRY_CAST(` + js(fSyslogPri) + ` AS INTEGER)`
	var bit int32
	var derived string
	switch field {
	case "raw", "event.original":
		return `(CASE WHEN packed & ` + strconv.Itoa(packRawSuffix) + ` != 0 THEN raw || message` +
			` WHEN packed & ` + strconv.Itoa(packRawIsMessage) + ` != 0 THEN message ELSE raw END)`, true
	case fSeverityCode:
		bit, derived = packSyslogPri, `CAST(`+pri+` % 8 AS VARCHAR)`
	case fFacilityCode:
		bit, derived = packSyslogPri, `CAST(`+pri+` // 8 AS VARCHAR)`
	case fSeverityName:
		bit, derived = packSyslogPri, sqlList(event.SyslogSeverityNames[:])+`[`+pri+` % 8 + 1]`
	case fFacilityName:
		bit, derived = packSyslogPri, sqlList(event.SyslogFacilityNames[:])+`[`+pri+` // 8 + 1]`
	case fProcID:
		bit, derived = packProcID, js(fProcessPID)
	case fInputName:
		bit, derived = packInputName, `input`
	case fURLOriginal:
		bit, derived = packURLOriginal, `url_path`
	default:
		return "", false
	}
	return `(CASE WHEN packed & ` + strconv.Itoa(int(bit)) + ` != 0 THEN ` + derived + ` ELSE ` + js(field) + ` END)`, true
}

// sqlList is a DuckDB list literal of names (plain words: no quoting
// needed beyond the single quotes).
func sqlList(names []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("'" + n + "'")
	}
	b.WriteByte(']')
	return b.String()
}
