// Command nocsoc runs a Network and Security Operations Center in one
// binary. See the README for the subcommands.
package main

import (
	"os"
	// Time zones for maintenance windows load even on hosts without
	// /usr/share/zoneinfo.
	_ "time/tzdata"
)

func main() { os.Exit(run(os.Args, os.Stdout, os.Stderr)) }
