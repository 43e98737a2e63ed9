package ui

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
	"time"
)

// The SVG helpers draw charts on the server as inline <svg> elements:
// no chart library, no script, nothing for the CSP to allow. They write only
// numbers and escaped text, so the template.HTML they return is safe.
// Colours come from CSS classes (console.css), so a theme can restyle them.

// Sparkline draws values (oldest first) as a polyline in a w×h box. NaN
// marks a failed probe and is drawn as a red tick at the bottom. Fewer than
// two points draw an empty box.
func Sparkline(values []float64, w, h int) template.HTML {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="spark" viewBox="0 0 %d %d" width="%d" height="%d" aria-hidden="true">`, w, h, w, h)
	if len(values) >= 2 {
		hi := 0.0
		for _, v := range values {
			if !math.IsNaN(v) && v > hi {
				hi = v
			}
		}
		if hi == 0 {
			hi = 1
		}
		step := float64(w) / float64(len(values)-1)
		var pts []string
		for i, v := range values {
			x := float64(i) * step
			if math.IsNaN(v) {
				fmt.Fprintf(&b, `<line class="fail" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>`, x, h, x, h-h/3)
				continue
			}
			y := float64(h) - 1 - v/hi*float64(h-2)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		}
		if len(pts) > 1 {
			fmt.Fprintf(&b, `<polyline class="line" points="%s"/>`, strings.Join(pts, " "))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// Point is one sample of a time chart. Failed samples are marked in red.
type Point struct {
	Time   time.Time
	Value  float64
	Failed bool
}

// TimeChart draws points over [from, to) as a line chart w×h with a y axis
// labelled in unit, a time axis with the range's ends, and red marks where
// samples failed. It is the check page's latency chart and the shape the
// metrics pages will reuse.
func TimeChart(points []Point, from, to time.Time, unit string, w, h int) template.HTML {
	const padL, padB, padT, padR = 48, 20, 8, 8
	pw, ph := float64(w-padL-padR), float64(h-padB-padT)
	span := to.Sub(from).Seconds()
	if span <= 0 {
		span = 1
	}
	hi := 0.0
	for _, p := range points {
		// Only what is drawn sets the scale.
		if !p.Failed && !p.Time.Before(from) && p.Time.Before(to) && p.Value > hi {
			hi = p.Value
		}
	}
	hi = niceCeil(hi)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s">`,
		w, h, html.EscapeString("chart in "+unit))
	x := func(t time.Time) float64 { return padL + t.Sub(from).Seconds()/span*pw }
	y := func(v float64) float64 { return padT + ph - v/hi*ph }
	// Grid and axes.
	for i := 0; i <= 4; i++ {
		v := hi * float64(i) / 4
		fmt.Fprintf(&b, `<line class="grid" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`, padL, y(v), w-padR, y(v))
		fmt.Fprintf(&b, `<text class="axis" x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-4, y(v)+4, html.EscapeString(fmtNum(v)+unit))
	}
	fmt.Fprintf(&b, `<text class="axis" x="%d" y="%d">%s</text>`, padL, h-4, html.EscapeString(from.Format("Jan 2 15:04")))
	fmt.Fprintf(&b, `<text class="axis" x="%d" y="%d" text-anchor="end">%s</text>`, w-padR, h-4, html.EscapeString(to.Format("Jan 2 15:04")))
	var pts []string
	var lastX, lastY float64
	for _, p := range points {
		if p.Time.Before(from) || !p.Time.Before(to) {
			continue
		}
		if p.Failed {
			fmt.Fprintf(&b, `<line class="fail" x1="%.1f" y1="%d" x2="%.1f" y2="%.1f"/>`, x(p.Time), padT, x(p.Time), padT+ph)
			continue
		}
		lastX, lastY = x(p.Time), y(p.Value)
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", lastX, lastY))
	}
	if len(pts) > 1 {
		fmt.Fprintf(&b, `<polyline class="line" points="%s"/>`, strings.Join(pts, " "))
	} else if len(pts) == 1 {
		fmt.Fprintf(&b, `<circle class="dot" cx="%.1f" cy="%.1f" r="2"/>`, lastX, lastY)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, so axis labels
// are round numbers.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func fmtNum(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2g", v)
}
