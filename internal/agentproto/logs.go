package agentproto

// LogRecord is one shipped log line. (Filled in by the log shipping work.)
type LogRecord struct{}
