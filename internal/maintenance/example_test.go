package maintenance

import (
	"fmt"
	"time"
)

func ExampleWindow_Next() {
	w := Window{Name: "patch tuesday", Schedule: "0 22 * * tue", Duration: 3 * 3600e9, TimeZone: "Europe/Berlin", Checks: []string{"web"}}
	n, ok := w.Next(time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC))
	fmt.Println(n.UTC(), ok)
	// Output: 2026-07-07 20:00:00 +0000 UTC true
}
