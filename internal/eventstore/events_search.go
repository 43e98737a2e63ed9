package eventstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nocsoc/nocsoc/internal/event"
	"github.com/nocsoc/nocsoc/internal/query"
)

// eventsSearchSchema is migration 3. message now always holds the text
// that bare words and phrases search (raw when the event has no string
// message, flagged by message_from_raw), so a search reads one column
// instead of coalesce(message, raw) over two. source_ip_hash and
// destination_ip_hash hold ipHash of the IP text, so that an equality
// filter scans an integer column (see ipHash).
const eventsSearchSchema = `ALTER TABLE events ADD COLUMN message_from_raw BOOLEAN;
ALTER TABLE events ADD COLUMN source_ip_hash BIGINT;
ALTER TABLE events ADD COLUMN destination_ip_hash BIGINT;
UPDATE events SET message = raw, message_from_raw = true WHERE message IS NULL;
UPDATE events SET source_ip_hash = (md5_number_upper(source_ip) >> 1)::BIGINT WHERE source_ip IS NOT NULL;
UPDATE events SET destination_ip_hash = (md5_number_upper(destination_ip) >> 1)::BIGINT WHERE destination_ip IS NOT NULL;`

// eventWhere translates a query like query.ToSQL(n, eventColumns) does,
// with the same results, but faster SQL for the two shapes that otherwise
// scan a text column in full:
//
//   - a bare word or phrase: contains(lower(message), lower(?)) instead of
//     ILIKE '%…%' (both lower-case both sides with DuckDB's lower; contains
//     is a vectorized substring search, about twice as fast);
//   - source.ip / destination.ip equal (or not equal) to a value: the hash
//     column first, the text only on the rows whose hash matches.
func eventWhere(n query.Node) (string, []any, error) {
	b := &whereBuilder{}
	w, err := b.node(n)
	if err != nil {
		return "", nil, err
	}
	return w, b.args, nil
}

type whereBuilder struct{ args []any }

func (b *whereBuilder) node(n query.Node) (string, error) {
	switch n := n.(type) {
	case query.And:
		return b.list(n.Nodes, " AND ")
	case query.Or:
		return b.list(n.Nodes, " OR ")
	case query.Not:
		s, err := b.node(n.Node)
		if err != nil {
			return "", err
		}
		// As in query.ToSQL: unknown (the field is absent) is no match, so
		// its negation matches.
		return "(NOT coalesce(" + s + ", false))", nil
	case query.Text:
		if !n.Wildcard {
			b.args = append(b.args, n.Value)
			return "contains(lower(message), lower(?))", nil
		}
	case query.Field:
		if w, ok := b.ipEquals(n); ok {
			return w, nil
		}
	}
	w, args, err := query.ToSQL(n, eventColumns)
	if err != nil {
		return "", err
	}
	b.args = append(b.args, args...)
	return w, nil
}

func (b *whereBuilder) list(nodes []query.Node, sep string) (string, error) {
	if len(nodes) == 0 {
		return "", fmt.Errorf("query: to SQL: empty %q group", strings.TrimSpace(sep))
	}
	parts := make([]string, len(nodes))
	for i, c := range nodes {
		s, err := b.node(c)
		if err != nil {
			return "", err
		}
		parts[i] = s
	}
	return "(" + strings.Join(parts, sep) + ")", nil
}

// ipEquals translates an exact (or not-equal) match on an IP field. The
// "OR hash IS NULL" never holds next to "hash = ?"; it makes the text
// comparison a filter over two columns, which DuckDB evaluates above the
// scan on the few rows the hash leaves, instead of pushing it into the
// scan, where it would decompress the whole text column.
func (b *whereBuilder) ipEquals(f query.Field) (string, bool) {
	if (f.Op != query.OpMatch && f.Op != query.OpNotEqual) || f.Wildcard || f.CIDR != nil {
		return "", false
	}
	var col, hcol string
	switch f.Name {
	case "source.ip":
		col, hcol = "source_ip", "source_ip_hash"
	case "destination.ip":
		col, hcol = "destination_ip", "destination_ip_hash"
	default:
		return "", false
	}
	b.args = append(b.args, ipHash(f.Value), f.Value)
	m := "(" + hcol + " = ? AND (" + col + " = ? OR " + hcol + " IS NULL))"
	if f.Op == query.OpNotEqual {
		m = "(NOT coalesce(" + m + ", false))"
	}
	return m, true
}

// tsSpan caches the oldest and newest event time stored, which bound the
// progressive windows of newestFirst. It may be wider than the truth
// (retention deleted the oldest rows), which costs at most one more
// window query, never a wrong result.
type tsSpan struct {
	mu       sync.Mutex
	loaded   bool
	nonEmpty bool
	min, max time.Time
	// Before the first get, extend gathers here what it is told (rows
	// acknowledged may not be in the table yet when get reads it).
	early              bool
	earlyMin, earlyMax time.Time
}

// get returns the span, reading it from db and files (nil when there are
// none) the first time. It holds mu while reading so that an extend racing
// with the read is not lost.
func (sp *tsSpan) get(ctx context.Context, db *sql.DB, files *eventFiles) (lo, hi time.Time, ok bool, err error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if !sp.loaded {
		var mn, mx sql.NullTime
		if err := db.QueryRowContext(ctx, `SELECT min(ts), max(ts) FROM events`).Scan(&mn, &mx); err != nil {
			return lo, hi, false, fmt.Errorf("read event time range: %w", err)
		}
		sp.loaded, sp.nonEmpty = true, mn.Valid
		sp.min, sp.max = mn.Time.UTC(), mx.Time.UTC()
		if files != nil {
			if n, _, _, fmin, fmax, _ := files.totals(); n > 0 {
				sp.widen(time.UnixMicro(fmin).UTC(), time.UnixMicro(fmax).UTC())
			}
		}
		if sp.early {
			sp.widen(sp.earlyMin, sp.earlyMax)
		}
	}
	return sp.min, sp.max, sp.nonEmpty, nil
}

// extend widens the span by newly committed events in [lo, hi].
func (sp *tsSpan) extend(lo, hi time.Time) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if !sp.loaded {
		if !sp.early || lo.Before(sp.earlyMin) {
			sp.earlyMin = lo
		}
		if !sp.early || hi.After(sp.earlyMax) {
			sp.earlyMax = hi
		}
		sp.early = true
		return
	}
	sp.widen(lo, hi)
}

func (sp *tsSpan) widen(lo, hi time.Time) {
	if !sp.nonEmpty || lo.Before(sp.min) {
		sp.min = lo
	}
	if !sp.nonEmpty || hi.After(sp.max) {
		sp.max = hi
	}
	sp.nonEmpty = true
}

// newestFirst returns the newest limit events matching where (" WHERE …"
// or "") with args. Rows are stored roughly in time order, so DuckDB's
// per-row-group min/max on ts skip every row group older than a ts bound.
// It therefore asks the most recent quarter of an hour first and widens the
// window 16-fold until limit rows are found, and finally asks without a
// bound: the newest limit rows of a window that holds limit rows are the
// newest limit rows overall. When matches are recent (the usual case) only
// the newest row groups are read; when there are few, the extra windows
// cost a fraction of the final full scan. from and upper bound the times
// where permits (zero when unbounded): the query's from, and the earlier of
// its to and its cursor's time.
func (s *Store) newestFirst(ctx context.Context, where string, args []any, from, upper time.Time, limit int) ([]event.Event, error) {
	const order = " ORDER BY ts DESC, id DESC LIMIT ?"
	oldest, newest, ok, err := s.span.get(ctx, s.db, s.ev.files)
	if err != nil {
		return nil, err
	}
	if ok {
		hi := newest.UnixMicro()
		if !upper.IsZero() {
			hi = min(hi, upper.UnixMicro())
		}
		glue := " WHERE "
		if where != "" {
			glue = where + " AND "
		}
		for _, w := range [...]time.Duration{15 * time.Minute, 4 * time.Hour, 64 * time.Hour} {
			lo := hi - w.Microseconds()
			if lo <= oldest.UnixMicro() || (!from.IsZero() && lo <= from.UnixMicro()) {
				break // the window is the whole range: ask it once, below
			}
			evs, err := s.queryLoaded(ctx, fileScope{lo: lo, hi: hi}, glue+"ts >= make_timestamp(?)"+order,
				slices.Concat(args, []any{lo, limit})...)
			if err != nil || len(evs) == limit {
				return evs, err
			}
		}
	}
	sc := scopeTime(from, upper)
	if !upper.IsZero() {
		sc.hi = upper.UnixMicro() // a cursor's own time is still in range
	}
	return s.queryLoaded(ctx, sc, where+order, slices.Concat(args, []any{limit})...)
}
