package agentproto

// Facts are the compliance facts an agent collected. (Filled in by the
// compliance work.)
type Facts struct{}
