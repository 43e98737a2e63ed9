package agentproto

import "time"

// Log record sources.
const (
	LogSourceFile    = "file"
	LogSourceJournal = "journald"
)

// Log shipping limits the server enforces on one batch.
const (
	// MaxLogRecords bounds the records of one batch.
	MaxLogRecords = 10000
	// MaxLogLine bounds one record's line in bytes; the agent truncates
	// longer lines and sets Truncated to the original length.
	MaxLogLine = 64 << 10
)

// LogRecord is one shipped log line: from a tailed file (Path) or from
// journald (Unit, Identifier, PID, Priority). Time is when the agent read
// a file line, or the journal entry's own time.
type LogRecord struct {
	Time   time.Time `json:"ts"`
	Source string    `json:"source"`
	// Path is the tailed file's name when the line was read.
	Path string `json:"path,omitempty"`
	// Unit is the journal entry's systemd unit (_SYSTEMD_UNIT).
	Unit string `json:"unit,omitempty"`
	Line string `json:"line"`
	// Priority is the journal entry's syslog priority (0 emerg … 7
	// debug); nil when it had none.
	Priority *int `json:"priority,omitempty"`
	// Identifier is SYSLOG_IDENTIFIER (the program name); PID is _PID.
	Identifier string `json:"identifier,omitempty"`
	PID        int    `json:"pid,omitempty"`
	// Truncated is the line's original length when it was cut at
	// MaxLogLine; 0 otherwise.
	Truncated int `json:"truncated,omitempty"`
}
