// Package policies ships nocsoc's built-in compliance policies (YAML under
// builtin/) inside the binary.
package policies

import "embed"

// Builtin holds builtin/*.yml.
//
//go:embed builtin/*.yml
var Builtin embed.FS
