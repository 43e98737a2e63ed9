package sigma

import "flag"

var update = flag.Bool("update", false, "rewrite golden files")
