package agentproto

import "time"

// Job protocol: the agent long-polls PathJobs (GET, ?wait=25s) with its
// credential and is answered a JobsResponse as soon as jobs are queued for
// it, or an empty one when wait has passed. It posts each job's outcome to
// PathJobResult; the server takes a result once per job id, so a replayed
// result is harmless.
const (
	PathJobs      = "/api/v1/agent/jobs"
	PathJobResult = "/api/v1/agent/jobs/result"
)

// Long-poll bounds: the server holds a poll at most MaxJobWait, whatever
// the agent asks; DefaultJobWait is what the agent asks.
const (
	DefaultJobWait = 25 * time.Second
	MaxJobWait     = 60 * time.Second
)

// MaxJobOutput bounds JobResult.Output: the tail of a job's output is
// kept, the head dropped.
const MaxJobOutput = 8 << 10

// Job result statuses.
const (
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
	// JobRefused: the agent would not run the job (unknown action, bad
	// arguments, outside its window, not allowed on this endpoint).
	JobRefused = "refused"
	// JobTimeout: the job ran past its timeout and was killed.
	JobTimeout = "timeout"
)

// Job is one action the server asks the agent to run. The agent runs it
// only between NotBefore and NotAfter, and kills it after TimeoutMS.
type Job struct {
	ID        string            `json:"id"`
	Action    string            `json:"action"`
	Args      map[string]string `json:"args,omitempty"`
	Packages  []string          `json:"packages,omitempty"`
	NotBefore time.Time         `json:"not_before"`
	NotAfter  time.Time         `json:"not_after"`
	TimeoutMS int64             `json:"timeout_ms"`
}

// JobsResponse answers a poll.
type JobsResponse struct {
	Jobs []Job `json:"jobs"`
}

// JobResult is the outcome of one job.
type JobResult struct {
	JobID      string    `json:"job_id"`
	Status     string    `json:"status"`
	ExitCode   int       `json:"exit_code"`
	Output     string    `json:"output,omitempty"`
	Error      string    `json:"error,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
}

// JobResultResponse answers a result: StatusApplied or StatusDuplicate.
type JobResultResponse struct {
	Status string `json:"status"`
}

// TailOutput keeps the last MaxJobOutput bytes of out, cut at a UTF-8
// boundary, marking the cut.
func TailOutput(out string) string {
	if len(out) <= MaxJobOutput {
		return out
	}
	const mark = "…(truncated)\n"
	cut := len(out) - (MaxJobOutput - len(mark))
	for cut < len(out) && out[cut]&0xC0 == 0x80 {
		cut++
	}
	return mark + out[cut:]
}
