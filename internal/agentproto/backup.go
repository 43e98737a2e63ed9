package agentproto

import "time"

// Bounds on backup reports.
const (
	// MaxBackupTail is the most bytes of a backup command's output kept
	// (its end: where errors and summaries are).
	MaxBackupTail = 8 << 10
	// MaxBackupRuns bounds the runs in one batch.
	MaxBackupRuns = 1000
	// MaxJobName bounds a backup job's name.
	MaxJobName = 128
)

// Sources of BackupRun.Bytes.
const (
	BytesFromSize   = "size"   // the size of --size PATH after the run
	BytesFromOutput = "output" // the bytes the command wrote to stdout and stderr
)

// BackupRun is one run of a wrapped backup command
// (`nocsoc agent run --job NAME -- COMMAND…`). RunID (a random UUID) makes
// the report idempotent: the server stores each run once, however often a
// batch carrying it is replayed.
type BackupRun struct {
	RunID     string    `json:"run_id"`
	Job       string    `json:"job"`
	Command   string    `json:"command,omitempty"` // the program's base name, never its arguments
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
	// ExitCode is the command's exit status; 128+N when killed by signal
	// N, 127 when it could not be started.
	ExitCode   int   `json:"exit_code"`
	DurationMS int64 `json:"duration_ms"`
	// Bytes is the backup's size; BytesSource says what was measured.
	Bytes       int64  `json:"bytes"`
	BytesSource string `json:"bytes_source"`
	// OutputTail is the last MaxBackupTail bytes of stdout and stderr
	// (interleaved as written); Truncated is set when more came before.
	OutputTail string `json:"output_tail,omitempty"`
	Truncated  bool   `json:"truncated,omitempty"`
	// Error says why the command could not be started or measured.
	Error string `json:"error,omitempty"`
}
