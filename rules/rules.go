// Package rules ships nocsoc's built-in detection rules (Sigma YAML under
// builtin/) inside the binary.
package rules

import "embed"

// Builtin holds builtin/*.yml.
//
//go:embed builtin/*.yml
var Builtin embed.FS
