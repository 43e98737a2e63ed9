package agentproto

// BackupRun is one run of a wrapped backup command. (Filled in by the
// backup work.)
type BackupRun struct{}
