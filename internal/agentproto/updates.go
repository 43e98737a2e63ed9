package agentproto

// Updates is the endpoint's pending package updates. (Filled in by the
// patch management work.)
type Updates struct{}
