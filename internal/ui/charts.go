package ui

import (
	"fmt"
	"html"
	"html/template"
	"strings"
	"time"
)

// Bar is one bucket of a histogram: the count of an interval starting at
// Time.
type Bar struct {
	Time  time.Time
	Value float64
}

// Histogram draws bars over [from, to) with one bar per interval, a y axis
// of counts and the range's ends on the time axis. Like the other SVG
// helpers it writes only numbers and escaped text.
func Histogram(bars []Bar, from, to time.Time, interval time.Duration, w, h int) template.HTML {
	const padL, padB, padT, padR = 48, 20, 8, 8
	pw, ph := float64(w-padL-padR), float64(h-padB-padT)
	span := to.Sub(from).Seconds()
	if span <= 0 {
		span = 1
	}
	hi := 0.0
	for _, b := range bars {
		hi = max(hi, b.Value)
	}
	hi = niceCeil(hi)
	var s strings.Builder
	fmt.Fprintf(&s, `<svg class="chart hist" viewBox="0 0 %d %d" role="img" aria-label="events over time">`, w, h)
	y := func(v float64) float64 { return padT + ph - v/hi*ph }
	for i := 0; i <= 2; i++ {
		v := hi * float64(i) / 2
		fmt.Fprintf(&s, `<line class="grid" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`, padL, y(v), w-padR, y(v))
		fmt.Fprintf(&s, `<text class="axis" x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-4, y(v)+4, fmtNum(v))
	}
	bw := max(interval.Seconds()/span*pw-1, 1)
	for _, b := range bars {
		if b.Value <= 0 {
			continue
		}
		x := padL + b.Time.Sub(from).Seconds()/span*pw
		if x < padL {
			x = padL
		}
		fmt.Fprintf(&s, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %s</title></rect>`,
			x, y(b.Value), bw, ph-(y(b.Value)-padT), html.EscapeString(b.Time.UTC().Format("Jan 2 15:04:05")), fmtNum(b.Value))
	}
	fmt.Fprintf(&s, `<text class="axis" x="%d" y="%d">%s</text>`, padL, h-4, html.EscapeString(from.UTC().Format("Jan 2 15:04")))
	fmt.Fprintf(&s, `<text class="axis" x="%d" y="%d" text-anchor="end">%s</text>`, w-padR, h-4, html.EscapeString(to.UTC().Format("Jan 2 15:04")))
	s.WriteString(`</svg>`)
	return template.HTML(s.String())
}

// LabeledBar is one bar of a category chart; Class picks its colour
// (console.css: sev-critical, team-soc …).
type LabeledBar struct {
	Label string
	Value float64
	Class string
}

// BarChart draws horizontal bars, one per category, labelled with the
// category and its value.
func BarChart(bars []LabeledBar, w int) template.HTML {
	const rowH, padL, padR = 22, 140, 60
	h := rowH*len(bars) + 4
	hi := 0.0
	for _, b := range bars {
		hi = max(hi, b.Value)
	}
	if hi == 0 {
		hi = 1
	}
	var s strings.Builder
	fmt.Fprintf(&s, `<svg class="chart bars" viewBox="0 0 %d %d" role="img" aria-label="bar chart">`, w, h)
	for i, b := range bars {
		y := i*rowH + 2
		bw := b.Value / hi * float64(w-padL-padR)
		fmt.Fprintf(&s, `<text class="axis" x="%d" y="%d" text-anchor="end">%s</text>`, padL-6, y+15, html.EscapeString(b.Label))
		fmt.Fprintf(&s, `<rect class="bar %s" x="%d" y="%d" width="%.1f" height="%d"/>`, html.EscapeString(b.Class), padL, y+2, max(bw, 1), rowH-6)
		fmt.Fprintf(&s, `<text class="axis" x="%.1f" y="%d">%s</text>`, float64(padL)+max(bw, 1)+6, y+15, fmtNum(b.Value))
	}
	s.WriteString(`</svg>`)
	return template.HTML(s.String())
}
