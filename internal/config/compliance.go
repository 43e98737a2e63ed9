package config

// Compliance is the `compliance:` section: where policies come from.
type Compliance struct {
	// Policies is a directory of policy YAML files (*.yml, *.yaml),
	// loaded in addition to the built-in pack and read-only through the
	// API. A refused file is logged with file:line; the others load.
	Policies string `yaml:"policies"`
	// Builtin loads the Linux baseline pack shipped in the binary
	// (default true).
	Builtin *bool `yaml:"builtin"`
}

// BuiltinOn reports whether the built-in policies load.
func (c Compliance) BuiltinOn() bool { return c.Builtin == nil || *c.Builtin }
