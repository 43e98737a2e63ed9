package check

// State is what nocsoc believes about a check right now.
type State string

// The states of a check.
const (
	// StateUp: the last probes succeeded.
	StateUp State = "up"
	// StateDown: fail_threshold consecutive probes failed.
	StateDown State = "down"
	// StateUnreachable: the check fails while a parent it depends on is
	// down; the parent is the root cause and no alert is raised.
	StateUnreachable State = "unreachable"
	// StateFlapping: the state changed too often within the flap window;
	// alerts are held until it settles.
	StateFlapping State = "flapping"
	// StateMaintenance: a maintenance window covers the check; it still
	// runs but raises no alert and its time is excluded from uptime.
	StateMaintenance State = "maintenance"
	// StateUnknown: no result yet, or nocsoc was not running.
	StateUnknown State = "unknown"
)

// States lists every state.
var States = []State{StateUp, StateDown, StateUnreachable, StateFlapping, StateMaintenance, StateUnknown}
