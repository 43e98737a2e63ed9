package agentproto

import "time"

// MaxFileStates bounds the file states in one batch.
const MaxFileStates = 20000

// FileState is the integrity state of one watched file. The agent sends
// the state of every watched file on its first report and, after that,
// only of files whose state changed (a deleted file is sent once with
// Exists false).
type FileState struct {
	Path   string `json:"path"`
	Exists bool   `json:"exists"`
	SHA256 string `json:"sha256,omitempty"`
	Size   int64  `json:"size,omitempty"`
	// Mode is the permission and type bits as Go's fs.FileMode.
	Mode  uint32    `json:"mode,omitempty"`
	UID   int       `json:"uid"`
	GID   int       `json:"gid"`
	MTime time.Time `json:"mtime,omitzero"`
	// Error says why the file exists but could not be hashed
	// (permission); SHA256 is then empty.
	Error string `json:"error,omitempty"`
}
