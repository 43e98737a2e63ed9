package eventstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"
)

// metricsSchema holds endpoint metric samples reported by agents. labels
// is the series' label set as "k=v,k2=v2" (sorted keys), e.g. "mount=/":
// a plain string compresses well and needs no JSON parsing to filter on.
const metricsSchema = `CREATE TABLE metric_samples (
	ts       TIMESTAMP NOT NULL,
	endpoint VARCHAR NOT NULL,
	name     VARCHAR NOT NULL,
	labels   VARCHAR NOT NULL,
	value    DOUBLE NOT NULL
);`

// MetricSample is one value of one endpoint metric series.
type MetricSample struct {
	Time     time.Time `json:"ts"`
	Endpoint string    `json:"endpoint"`
	Name     string    `json:"name"`
	Labels   string    `json:"labels,omitempty"`
	Value    float64   `json:"value"`
}

// AppendMetrics writes samples in one appender commit and returns once
// they are durable: the caller (an agent batch) records the batch as
// applied only after that. A sample without time, endpoint or name rejects
// the whole call and writes nothing.
func (s *Store) AppendMetrics(ctx context.Context, rows []MetricSample) error {
	for i, r := range rows {
		switch {
		case r.Time.IsZero():
			return fmt.Errorf("eventstore: append metrics: sample %d: ts is required", i)
		case r.Endpoint == "":
			return fmt.Errorf("eventstore: append metrics: sample %d: endpoint is required", i)
		case r.Name == "":
			return fmt.Errorf("eventstore: append metrics: sample %d: name is required", i)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	start := time.Now()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	err := withAppender(ctx, s.wconn, "metric_samples", func(a *duckdb.Appender) error {
		for _, r := range rows {
			if err := a.AppendRow(r.Time.UTC(), r.Endpoint, r.Name, r.Labels, r.Value); err != nil {
				return fmt.Errorf("append sample %q: %w", r.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("eventstore: append metrics: %w", err)
	}
	if s.o.OnWrite != nil {
		s.o.OnWrite(len(rows), time.Since(start))
	}
	return nil
}

// MetricFilter selects samples of one endpoint; Name and the times are
// optional; Limit defaults to 1000 and is capped at 100000.
type MetricFilter struct {
	Endpoint string
	Name     string
	From, To time.Time
	Limit    int
}

// MetricSamples returns matching samples oldest first.
func (s *Store) MetricSamples(ctx context.Context, f MetricFilter) ([]MetricSample, error) {
	if f.Endpoint == "" {
		return nil, fmt.Errorf("eventstore: metric samples: endpoint is required")
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.To.Before(f.From) {
		return nil, fmt.Errorf("eventstore: metric samples: to (%s) is before from (%s)", f.To.Format(time.RFC3339), f.From.Format(time.RFC3339))
	}
	limit := f.Limit
	switch {
	case limit <= 0:
		limit = 1000
	case limit > 100000:
		limit = 100000
	}
	where := []string{"endpoint = ?"}
	args := []any{f.Endpoint}
	if f.Name != "" {
		where = append(where, "name = ?")
		args = append(args, f.Name)
	}
	if !f.From.IsZero() {
		where = append(where, "ts >= ?")
		args = append(args, f.From.UTC())
	}
	if !f.To.IsZero() {
		where = append(where, "ts < ?")
		args = append(args, f.To.UTC())
	}
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, `SELECT ts, endpoint, name, labels, value FROM metric_samples WHERE `+
		strings.Join(where, " AND ")+` ORDER BY ts, name, labels LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("eventstore: metric samples: %w", err)
	}
	defer rows.Close()
	var out []MetricSample
	for rows.Next() {
		var m MetricSample
		if err := rows.Scan(&m.Time, &m.Endpoint, &m.Name, &m.Labels, &m.Value); err != nil {
			return nil, fmt.Errorf("eventstore: metric samples: %w", err)
		}
		m.Time = m.Time.UTC()
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("eventstore: metric samples: %w", err)
	}
	return out, nil
}

// CountMetricSamples counts an endpoint's samples (all endpoints when
// endpoint is empty).
func (s *Store) CountMetricSamples(ctx context.Context, endpoint string) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM metric_samples WHERE ? = '' OR endpoint = ?`, endpoint, endpoint).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("eventstore: count metric samples: %w", err)
	}
	return n, nil
}
