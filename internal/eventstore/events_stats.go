package eventstore

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/event"
	"github.com/nocsoc/nocsoc/internal/query"
)

// StatsQuery asks EventStats for top values of a field (By), a histogram
// over time (Interval), or both (per-interval counts of the top values).
type StatsQuery struct {
	Where    query.Node
	From, To time.Time
	// By is the field whose most frequent values are counted.
	By string
	// Interval, when positive, buckets counts by event time.
	Interval time.Duration
	// Limit caps the number of top values (0 means 10, at most MaxLimit).
	// It does not cap histogram buckets.
	Limit int
	// NoWait counts what DuckDB holds now (EventQuery.NoWait).
	NoWait bool
}

// Bucket is one count: of a value of By (Key), of an interval starting at
// Time, or of a value within an interval.
type Bucket struct {
	Key   string    `json:"key,omitempty"`
	Time  time.Time `json:"time,omitzero"`
	Count int64     `json:"count"`
}

// MaxBuckets bounds the histogram a StatsQuery can ask for.
const MaxBuckets = 100000

// EventStats counts matching events. With By alone it returns the Limit
// most frequent values, most frequent first (events without the field are
// not counted). With Interval alone it returns one bucket per interval in
// time order; when From and To are both set, empty intervals are included
// with a zero count. With both it returns, for the Limit most frequent
// values overall, a bucket per (interval, value) that has events, ordered by
// time then value. Intervals are aligned to the Unix epoch.
func (s *Store) EventStats(ctx context.Context, q StatsQuery) ([]Bucket, error) {
	if !q.NoWait {
		if err := s.syncEvents(ctx); err != nil {
			return nil, fmt.Errorf("eventstore: event stats: %w", err)
		}
	}
	if q.By == "" && q.Interval <= 0 {
		return nil, fmt.Errorf("eventstore: event stats: %w", &check.FieldError{Field: "by", Reason: "by or interval is required"})
	}
	if q.Interval < 0 || (q.Interval > 0 && q.Interval < time.Microsecond) {
		return nil, fmt.Errorf("eventstore: event stats: %w", &check.FieldError{Field: "interval", Reason: "must be positive"})
	}
	if q.Interval > 0 && !q.From.IsZero() && !q.To.IsZero() && q.To.Sub(q.From)/q.Interval > MaxBuckets {
		return nil, fmt.Errorf("eventstore: event stats: %w", &check.FieldError{Field: "interval",
			Reason: fmt.Sprintf("%s makes more than %d buckets over the range", q.Interval, MaxBuckets)})
	}
	limit := q.Limit
	if limit == 0 {
		limit = 10
	}
	limit, err := normLimit("limit", limit)
	if err != nil {
		return nil, fmt.Errorf("eventstore: event stats: %w", err)
	}
	var key string
	if q.By != "" {
		if !query.ValidFieldName(q.By) {
			return nil, fmt.Errorf("eventstore: event stats: %w", &check.FieldError{Field: "by", Reason: fmt.Sprintf("%q is not a field name", q.By)})
		}
		expr, typed := eventColumns(q.By)
		if q.By == query.TextField {
			// Only events that have a message count, not those whose
			// message column holds their raw line.
			expr = "CASE WHEN message_from_raw THEN NULL ELSE message END"
		}
		if typed {
			expr = "CAST(" + expr + " AS VARCHAR)"
		}
		key = expr
	}
	where, args, err := filter(q.Where, q.From, q.To, "")
	if err != nil {
		return nil, fmt.Errorf("eventstore: event stats: %w", err)
	}
	iv := q.Interval.Microseconds()
	rel, release := s.eventsFrom(scopeTime(q.From, q.To))
	defer release()
	var sqlText string
	switch {
	case q.Interval <= 0:
		sqlText = `SELECT k, NULL, count(*) FROM (SELECT ` + key + ` AS k FROM ` + rel + where + `)
			WHERE k IS NOT NULL GROUP BY k ORDER BY count(*) DESC, k LIMIT ?`
		args = append(args, limit)
	case key == "":
		sqlText = `SELECT NULL, epoch_us(ts) // ? * ? AS b, count(*) FROM ` + rel + where + ` GROUP BY b ORDER BY b`
		args = append([]any{iv, iv}, args...)
	default:
		sqlText = `WITH base AS (SELECT ts, ` + key + ` AS k FROM ` + rel + where + `),
			top AS (SELECT k FROM base WHERE k IS NOT NULL GROUP BY k ORDER BY count(*) DESC, k LIMIT ?)
			SELECT k, epoch_us(ts) // ? * ? AS b, count(*) FROM base WHERE k IN (SELECT k FROM top)
			GROUP BY b, k ORDER BY b, k`
		args = append(args, limit, iv, iv)
	}
	rows, err := s.db.QueryContext(ctx, sqlText, args...)
	if err != nil {
		return nil, fmt.Errorf("eventstore: event stats: %w", err)
	}
	defer rows.Close()
	out := []Bucket{}
	for rows.Next() {
		var (
			k *string
			b *int64
			n int64
		)
		if err := rows.Scan(&k, &b, &n); err != nil {
			return nil, fmt.Errorf("eventstore: event stats: %w", err)
		}
		bk := Bucket{Count: n}
		if k != nil {
			bk.Key = *k
		}
		if b != nil {
			bk.Time = time.UnixMicro(*b).UTC()
		}
		out = append(out, bk)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("eventstore: event stats: %w", err)
	}
	if key == "" && !q.From.IsZero() && !q.To.IsZero() {
		out = fillBuckets(out, q.From, q.To, q.Interval)
	}
	return out, nil
}

// fillBuckets adds zero buckets for empty intervals of [from, to).
func fillBuckets(got []Bucket, from, to time.Time, iv time.Duration) []Bucket {
	ivus := iv.Microseconds()
	start := from.UnixMicro() / ivus * ivus
	if from.UnixMicro() < 0 && from.UnixMicro()%ivus != 0 {
		start -= ivus
	}
	out := make([]Bucket, 0, len(got))
	i := 0
	for t := start; t < to.UnixMicro(); t += ivus {
		if i < len(got) && got[i].Time.UnixMicro() == t {
			out = append(out, got[i])
			i++
			continue
		}
		out = append(out, Bucket{Time: time.UnixMicro(t).UTC()})
	}
	return out
}

// Export formats.
const (
	FormatNDJSON = "ndjson"
	FormatCSV    = "csv"
)

// csvColumns are the CSV export's header: the fixed fields, the promoted
// ECS fields, then every other field as one JSON object.
var csvColumns = []string{"id", "@timestamp", "received", "host.name", "input", "message",
	"source.ip", "source.port", "destination.ip", "user.name", "process.name", "event.action",
	"event.outcome", "event.category", "http.response.status_code", "url.path",
	"fields", "raw", "parse_error"}

// ExportEvents writes the events matching q to w, newest first, as NDJSON
// (one event.Event JSON object a line) or CSV (header csvColumns), streaming
// row by row. q.Limit 0 exports every match. It returns the number of events
// written; on error, what was written so far is a valid prefix line-wise.
func (s *Store) ExportEvents(ctx context.Context, q EventQuery, w io.Writer, format string) (int64, error) {
	if err := s.syncEvents(ctx); err != nil {
		return 0, fmt.Errorf("eventstore: export events: %w", err)
	}
	if format != FormatNDJSON && format != FormatCSV {
		return 0, fmt.Errorf("eventstore: export events: %w", &check.FieldError{Field: "format", Reason: fmt.Sprintf("%q is not ndjson or csv", format)})
	}
	if q.Limit < 0 {
		return 0, fmt.Errorf("eventstore: export events: %w", &check.FieldError{Field: "limit", Reason: "must not be negative"})
	}
	where, args, err := filter(q.Where, q.From, q.To, q.Cursor)
	if err != nil {
		return 0, fmt.Errorf("eventstore: export events: %w", err)
	}
	rel, release := s.eventsFrom(scopeTime(q.From, q.To))
	defer release()
	sqlText := selectEvents + rel + where + " ORDER BY ts DESC, id DESC"
	if q.Limit > 0 {
		sqlText += " LIMIT ?"
		args = append(args, q.Limit)
	}
	rows, err := s.db.QueryContext(ctx, sqlText, args...)
	if err != nil {
		return 0, fmt.Errorf("eventstore: export events: %w", err)
	}
	defer rows.Close()
	var (
		n    int64
		enc  = json.NewEncoder(w)
		cw   *csv.Writer
		line []string
	)
	if format == FormatCSV {
		cw = csv.NewWriter(w)
		if err := cw.Write(csvColumns); err != nil {
			return 0, fmt.Errorf("eventstore: export events: %w", err)
		}
		line = make([]string, len(csvColumns))
	}
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return n, fmt.Errorf("eventstore: export events: %w", err)
		}
		if cw != nil {
			if err := csvLine(line, &e); err != nil {
				return n, fmt.Errorf("eventstore: export events: event %d: %w", e.ID, err)
			}
			err = cw.Write(line)
			if n%1000 == 0 {
				cw.Flush() // surface write errors and keep memory flat
				err = cw.Error()
			}
		} else {
			err = enc.Encode(&e)
		}
		if err != nil {
			return n, fmt.Errorf("eventstore: export events: %w", err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("eventstore: export events: %w", err)
	}
	if cw != nil {
		cw.Flush()
		if err := cw.Error(); err != nil {
			return n, fmt.Errorf("eventstore: export events: %w", err)
		}
	}
	return n, nil
}

func csvLine(line []string, e *event.Event) error {
	rest := make(map[string]any, len(e.Fields))
	for k, v := range e.Fields {
		rest[k] = v
	}
	line[0] = strconv.FormatUint(e.ID, 10)
	line[1] = e.Time.UTC().Format(time.RFC3339Nano)
	line[2] = e.Received.UTC().Format(time.RFC3339Nano)
	line[3], line[4] = e.Host, e.Input
	for i, name := range csvColumns[5:16] {
		line[5+i] = csvValue(rest[name])
		delete(rest, name)
	}
	line[16] = ""
	if len(rest) > 0 {
		b, err := json.Marshal(rest)
		if err != nil {
			return err
		}
		line[16] = string(b)
	}
	line[17], line[18] = e.Raw, e.ParseError
	return nil
}

func csvValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
