package agentproto

// FileState is the integrity state of one watched file. (Filled in by the
// file integrity work.)
type FileState struct{}
