package agentproto

// Jobs: placeholder for the job protocol (patch, package and response
// actions run by the agent).
