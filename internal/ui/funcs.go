package ui

import (
	"fmt"
	"html/template"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

// funcs are the template helpers every page can use.
func (u *UI) funcs() template.FuncMap {
	return template.FuncMap{
		"asset":    u.assets.url,
		"add":      func(a, b int) int { return a + b },
		"ago":      func(t time.Time) string { return ago(u.now(), t) },
		"ratio":    fmtRatio,
		"dur":      fmtDur,
		"ts":       func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
		"stateCls": func(s check.State) string { return "st-" + string(normState(s)) },
		"sparkline": func(v []float64) template.HTML {
			return Sparkline(v, 120, 24)
		},
	}
}

func normState(s check.State) check.State {
	if s == "" {
		return check.StateUnknown
	}
	return s
}

// ago is a short human age: "45s", "12m", "3h", "2d".
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "now"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// fmtRatio shows an uptime ratio as a percentage with enough digits to
// tell 99.9 from 99.99; nil (no data) is a dash.
func fmtRatio(r *float64) string {
	if r == nil {
		return "–"
	}
	p := *r * 100
	switch {
	case p >= 100:
		return "100%"
	case p >= 99:
		return fmt.Sprintf("%.2f%%", p)
	}
	return fmt.Sprintf("%.1f%%", p)
}

// fmtDur shows a latency: "850µs", "12ms", "1.2s".
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}
