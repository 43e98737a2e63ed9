// Package agentproto is the wire protocol between the endpoint agent and
// the nocsoc server: JSON request and response bodies and the paths they
// are posted to. Both sides import it; it imports only the standard library
// so that the agent stays free of server dependencies.
package agentproto

import "time"

// Paths the agent posts to. Every request but enrollment carries
// "Authorization: Bearer <credential>".
const (
	PathEnroll    = "/api/v1/agent/enroll"
	PathHeartbeat = "/api/v1/agent/heartbeat"
	PathBatches   = "/api/v1/agent/batches"
)

// MaxBatchBytes bounds one batch's JSON body; the server refuses larger
// bodies with 413.
const MaxBatchBytes = 8 << 20

// CredentialPrefix starts every agent credential, so a leaked one is
// recognisable in logs and secret scanners.
const CredentialPrefix = "nsa_"

// Batch statuses answered by the server.
const (
	StatusApplied   = "applied"
	StatusDuplicate = "duplicate"
)

// EnrollRequest exchanges a single-use enrollment token for a credential.
type EnrollRequest struct {
	Token        string `json:"token"`
	Hostname     string `json:"hostname"`
	OS           string `json:"os"`
	Platform     string `json:"platform,omitempty"`
	Kernel       string `json:"kernel,omitempty"`
	Arch         string `json:"arch,omitempty"`
	AgentVersion string `json:"agent_version,omitempty"`
	// Labels are the agent's --label flags (labels.go).
	Labels map[string]string `json:"labels,omitempty"`
}

// EnrollResponse carries the agent's identity. The credential is shown only
// this once; the server keeps its hash.
type EnrollResponse struct {
	AgentID    string `json:"agent_id"`
	Credential string `json:"credential"`
}

// Heartbeat says the agent is alive. IntervalMS is the agent's reporting
// interval: the server declares it unresponsive after three missed ones.
type Heartbeat struct {
	AgentID    string    `json:"agent_id"`
	SentAt     time.Time `json:"sent_at"`
	IntervalMS int64     `json:"interval_ms"`
	Hostname   string    `json:"hostname,omitempty"`
	// Buffered is how many batches wait on disk; Dropped how many the
	// bounded buffer has discarded since enrollment.
	Buffered int    `json:"buffered"`
	Dropped  uint64 `json:"dropped"`
	// Labels are the agent's --label flags, sent with every heartbeat so
	// a restart with other flags relabels the endpoint. Absent (null,
	// older agents) leaves the stored labels alone; {} clears them.
	Labels map[string]string `json:"labels"`
}

// Batch is one unit of reported data. BatchID (a random UUID) makes a
// replay idempotent: the server applies each id once. Seq grows by one per
// batch, so gaps show loss.
type Batch struct {
	BatchID   string     `json:"batch_id"`
	AgentID   string     `json:"agent_id"`
	Seq       uint64     `json:"seq"`
	SentAt    time.Time  `json:"sent_at"`
	Metrics   []Sample   `json:"metrics,omitempty"`
	Inventory *Inventory `json:"inventory,omitempty"`
	// Updates is the pending package updates (updates.go).
	Updates *Updates `json:"updates,omitempty"`
	// Backups are runs of `nocsoc agent run --job` (backup.go).
	Backups []BackupRun `json:"backups,omitempty"`
	// Files are file integrity states of watched files (fim.go).
	Files []FileState `json:"files,omitempty"`
	// Logs are shipped log lines (logs.go).
	Logs []LogRecord `json:"logs,omitempty"`
	// Facts are compliance facts (facts.go).
	Facts *Facts `json:"facts,omitempty"`
}

// BatchResponse answers a batch: StatusApplied or StatusDuplicate.
type BatchResponse struct {
	Status string `json:"status"`
}

// Sample is one metric value. Labels distinguish series of the same name
// (mount point, interface, CPU).
type Sample struct {
	Time   time.Time         `json:"ts"`
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Value  float64           `json:"value"`
}

// Inventory is a snapshot of what is on the endpoint.
type Inventory struct {
	CollectedAt     time.Time `json:"collected_at"`
	Hostname        string    `json:"hostname"`
	OS              string    `json:"os"`
	Platform        string    `json:"platform,omitempty"`
	PlatformVersion string    `json:"platform_version,omitempty"`
	Kernel          string    `json:"kernel,omitempty"`
	Arch            string    `json:"arch,omitempty"`
	BootTime        time.Time `json:"boot_time,omitzero"`
	Hardware        Hardware  `json:"hardware"`
	IPs             []string  `json:"ips,omitempty"`
	Packages        []Package `json:"packages,omitempty"`
	Services        []string  `json:"services,omitempty"`
	Ports           []Port    `json:"ports,omitempty"`
	Users           []User    `json:"users,omitempty"`
	Groups          []Group   `json:"groups,omitempty"`
}

// Hardware describes the machine.
type Hardware struct {
	CPUModel    string `json:"cpu_model,omitempty"`
	CPUs        int    `json:"cpus,omitempty"`
	MemoryBytes uint64 `json:"memory_bytes,omitempty"`
	Vendor      string `json:"vendor,omitempty"`
	Product     string `json:"product,omitempty"`
	Virtual     string `json:"virtualization,omitempty"`
}

// Package is an installed package.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch,omitempty"`
}

// Port is a listening socket.
type Port struct {
	Proto string `json:"proto"` // tcp or tcp6
	Addr  string `json:"addr"`
	Port  int    `json:"port"`
}

// User is a local account.
type User struct {
	Name  string `json:"name"`
	UID   int    `json:"uid"`
	GID   int    `json:"gid"`
	Home  string `json:"home,omitempty"`
	Shell string `json:"shell,omitempty"`
}

// Group is a local group.
type Group struct {
	Name    string   `json:"name"`
	GID     int      `json:"gid"`
	Members []string `json:"members,omitempty"`
}

// Error is the server's error body.
type Error struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}
