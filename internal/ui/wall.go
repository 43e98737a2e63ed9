package ui

import (
	"context"
	"html/template"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/eventstore"
)

// wallPageSize bounds the tiles rendered per page, so a 10,000-check wall
// stays a few hundred kilobytes; problems are always shown in full above.
const wallPageSize = 500

// sparkPoints is how many recent results a tile's sparkline shows.
const sparkPoints = 30

// wallStats are the per-check figures the wall shows, computed in bulk and
// cached (Options.StatsTTL) so that a wall render runs no query per tile.
type wallStats struct {
	at         time.Time
	took       time.Duration // how long computing them took
	up24, up30 map[string]*float64
	spark      map[string][]float64
}

// wallStatsState is the cache behind statsFor.
type wallStatsState struct {
	mu         sync.Mutex
	stats      *wallStats
	refreshing bool
	retryAt    time.Time     // after a failed refresh
	done       chan struct{} // closed when the running refresh ends
}

// statsRefreshTimeout bounds one background refresh.
const statsRefreshTimeout = 5 * time.Minute

// defaultFirstWait is how long the first render after a start waits for
// the figures before it shows the wall without them.
const defaultFirstWait = 2 * time.Second

// statsFor returns the wall's figures. A render never waits for the event
// store longer than the first wait: stale figures are served while one
// background refresh replaces them, and before the first computation has
// finished (minutes with 30 days of results for ten thousand checks) the
// wall shows its tiles without uptime figures. With ten thousand checks
// and weeks of results the uptime queries take seconds, so a refresh
// starts no sooner than the TTL, nor sooner than five times the last
// computation took after it, which keeps the event store from being busy
// with the wall all the time.
func (u *UI) statsFor(ctx context.Context) (*wallStats, error) {
	c := &u.wallCache
	c.mu.Lock()
	now := u.now()
	if s := c.stats; s != nil {
		if now.Sub(s.at) >= max(u.statsTTL, 5*s.took) && !c.refreshing && !now.Before(c.retryAt) {
			u.startRefreshLocked(ctx)
		}
		c.mu.Unlock()
		return s, nil
	}
	if !c.refreshing && !now.Before(c.retryAt) {
		u.startRefreshLocked(ctx)
	}
	done := c.done
	c.mu.Unlock()
	wait := u.firstWait
	if wait <= 0 {
		wait = defaultFirstWait
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
	c.mu.Lock()
	s := c.stats
	c.mu.Unlock()
	if s == nil {
		// Not computed yet (or the computation failed): the tiles without
		// figures, now, rather than a page that waits.
		return &wallStats{at: now, up24: map[string]*float64{}, up30: map[string]*float64{}, spark: map[string][]float64{}}, nil
	}
	return s, nil
}

// startRefreshLocked starts a background refresh; c.mu is held.
func (u *UI) startRefreshLocked(ctx context.Context) {
	c := &u.wallCache
	c.refreshing = true
	done := make(chan struct{})
	c.done = done
	go func() {
		defer close(done)
		u.refreshStats(context.WithoutCancel(ctx))
	}()
}

// refreshStats recomputes the figures in the background; on failure the
// old ones stay and the next attempt waits a TTL.
func (u *UI) refreshStats(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, statsRefreshTimeout)
	defer cancel()
	s, err := u.computeStats(ctx)
	c := &u.wallCache
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refreshing = false
	if err != nil {
		u.log.Warn("refresh NOC wall figures", "err", err)
		c.retryAt = u.now().Add(u.statsTTL)
		return
	}
	if c.stats == nil || c.stats.at.Before(s.at) {
		c.stats = s
	}
}

// computeStats runs the wall's bulk queries: uptime over 24 h and 30 d of
// every check and the last hour of results for the sparklines.
func (u *UI) computeStats(ctx context.Context) (*wallStats, error) {
	start := time.Now()
	now := u.now()
	s := &wallStats{at: now, up24: map[string]*float64{}, up30: map[string]*float64{}, spark: map[string][]float64{}}
	for _, p := range []struct {
		d   time.Duration
		dst map[string]*float64
	}{{24 * time.Hour, s.up24}, {30 * 24 * time.Hour, s.up30}} {
		from := now.Add(-p.d)
		if b, ok := u.events.(BatchUptimer); ok {
			all, err := b.UptimeAll(ctx, from, now)
			if err != nil {
				return nil, err
			}
			for name, up := range all {
				p.dst[name] = up.Ratio
			}
			continue
		}
		for _, c := range u.noc.Checks() {
			up, err := u.events.Uptime(ctx, c.Spec.Name, from, now)
			if err != nil {
				return nil, err
			}
			p.dst[c.Spec.Name] = up.Ratio
		}
	}
	// Sparklines: the last hour of results of every check in one query,
	// newest first, capped; a check with no recent result draws nothing.
	rows, err := u.events.Results(ctx, eventstore.ResultFilter{From: now.Add(-time.Hour), Limit: eventstore.MaxLimit})
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		v := s.spark[r.Check]
		if len(v) >= sparkPoints {
			continue
		}
		ms := float64(r.Duration) / float64(time.Millisecond)
		if !r.OK {
			ms = math.NaN()
		}
		s.spark[r.Check] = append(v, ms)
	}
	for _, v := range s.spark {
		slices.Reverse(v)
	}
	s.took = time.Since(start)
	u.log.Debug("NOC wall figures computed", "took", s.took)
	return s, nil
}

// Tile is one check on the wall.
type Tile struct {
	Name        string
	State       check.State
	Since       time.Time
	RootCause   string
	Maintenance string
	Error       string
	Latency     time.Duration
	Up24, Up30  *float64
	Spark       template.HTML
	// Children are the unreachable checks whose root cause is this one,
	// folded under it in the problems row.
	Children []string
}

// TileGroup is the tiles sharing one value of the grouping label.
type TileGroup struct {
	Name  string
	Tiles []Tile
}

// WallData is the NOC wall's page data.
type WallData struct {
	GroupBy   string
	LabelKeys []string
	Problems  bool
	Counts    []StateCount
	Total     int
	Roots     []Tile
	Groups    []TileGroup
	Windows   []string
	Page      int
	Pages     int
	Query     string // the query string of this view, for the fragment URL
}

// StateCount is the number of checks in one state.
type StateCount struct {
	State check.State
	N     int
}

func (u *UI) wallData(r *http.Request) (WallData, error) {
	q := r.URL.Query()
	d := WallData{GroupBy: q.Get("by"), Problems: q.Get("problems") == "1", Query: r.URL.RawQuery}
	if d.GroupBy == "" {
		d.GroupBy = "group"
	}
	if p, err := strconv.Atoi(q.Get("page")); err == nil && p > 1 {
		d.Page = p - 1
	}
	checks := u.noc.Checks()
	stats, err := u.statsFor(r.Context())
	if err != nil {
		return d, err
	}
	keys := map[string]bool{}
	counts := map[check.State]int{}
	tiles := make([]Tile, 0, len(checks))
	children := map[string][]string{}
	for _, c := range checks {
		for k := range c.Spec.Labels {
			keys[k] = true
		}
		st := c.Status
		t := Tile{Name: c.Spec.Name, State: normState(st.State), Since: st.Since, RootCause: st.RootCause,
			Maintenance: st.Maintenance, Up24: stats.up24[c.Spec.Name], Up30: stats.up30[c.Spec.Name]}
		if st.LastResult != nil {
			t.Latency = st.LastResult.Duration
			t.Error = st.LastResult.Error
		}
		counts[t.State]++
		if t.State == check.StateUnreachable && t.RootCause != "" {
			children[t.RootCause] = append(children[t.RootCause], t.Name)
		}
		tiles = append(tiles, t)
	}
	d.Total = len(tiles)
	for _, s := range check.States {
		if counts[s] > 0 {
			d.Counts = append(d.Counts, StateCount{State: s, N: counts[s]})
		}
	}
	for k := range keys {
		d.LabelKeys = append(d.LabelKeys, k)
	}
	sort.Strings(d.LabelKeys)
	// Root causes: every down or flapping check, with the unreachable
	// checks it explains folded under it.
	for _, t := range tiles {
		if t.State == check.StateDown || t.State == check.StateFlapping {
			t.Children = children[t.Name]
			t.Spark = Sparkline(stats.spark[t.Name], 120, 24)
			d.Roots = append(d.Roots, t)
		}
	}
	if d.Problems {
		kept := tiles[:0]
		for _, t := range tiles {
			if t.State != check.StateUp {
				kept = append(kept, t)
			}
		}
		tiles = kept
	}
	labelOf := map[string]string{}
	for _, c := range checks {
		labelOf[c.Spec.Name] = c.Spec.Labels[d.GroupBy]
	}
	sort.SliceStable(tiles, func(i, j int) bool {
		gi, gj := labelOf[tiles[i].Name], labelOf[tiles[j].Name]
		if gi != gj {
			// Checks without the label go last.
			if gi == "" || gj == "" {
				return gj == ""
			}
			return gi < gj
		}
		return tiles[i].Name < tiles[j].Name
	})
	d.Pages = max(1, (len(tiles)+wallPageSize-1)/wallPageSize)
	d.Page = min(d.Page, d.Pages-1)
	lo := d.Page * wallPageSize
	hi := min(len(tiles), lo+wallPageSize)
	for _, t := range tiles[lo:hi] {
		// Sparklines are drawn only for the tiles on this page.
		t.Spark = Sparkline(stats.spark[t.Name], 120, 24)
		g := labelOf[t.Name]
		if g == "" {
			g = "no " + d.GroupBy
		}
		if n := len(d.Groups); n == 0 || d.Groups[n-1].Name != g {
			d.Groups = append(d.Groups, TileGroup{Name: g})
		}
		d.Groups[len(d.Groups)-1].Tiles = append(d.Groups[len(d.Groups)-1].Tiles, t)
	}
	d.Page++ // one-based for display
	now := u.now()
	for _, w := range u.noc.Windows() {
		if w.ActiveAt(now) {
			d.Windows = append(d.Windows, w.Name)
		}
	}
	return d, nil
}

func (u *UI) wallPage(w http.ResponseWriter, r *http.Request) error {
	d, err := u.wallData(r)
	if err != nil {
		return err
	}
	return u.render(w, r, http.StatusOK, "noc", Page{Title: "NOC wall", Nav: "noc", Live: true, Data: d})
}

// wallFragment is the wall without the layout: the page's script fetches it
// to re-draw after structural changes (a new root cause, a check added).
func (u *UI) wallFragment(w http.ResponseWriter, r *http.Request) error {
	d, err := u.wallData(r)
	if err != nil {
		return err
	}
	return u.renderTemplate(w, r, http.StatusOK, "noc", "wall", Page{Data: d})
}
