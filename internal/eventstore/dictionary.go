package eventstore

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/duckdb/duckdb-go/v2"
)

// dictionary mirrors the check_names table in memory: the writer needs the
// id of every row's check and queries need the reverse, both far more often
// than the table changes. Only the writer goroutine adds to it.
type dictionary struct {
	mu          sync.RWMutex
	ids         map[string]int32
	names       []string        // by id; ids start at 1
	maxInterval []time.Duration // by id
}

func (d *dictionary) load(ctx context.Context, db *sql.DB) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ids = map[string]int32{}
	d.names = []string{""}
	d.maxInterval = []time.Duration{0}
	rows, err := db.QueryContext(ctx, `SELECT id, name, max_interval_ns FROM check_names ORDER BY id`)
	if err != nil {
		return fmt.Errorf("load check names: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id   int32
			name string
			iv   int64
		)
		if err := rows.Scan(&id, &name, &iv); err != nil {
			return fmt.Errorf("load check names: %w", err)
		}
		for int(id) >= len(d.names) {
			d.names = append(d.names, "")
			d.maxInterval = append(d.maxInterval, 0)
		}
		d.ids[name] = id
		d.names[id] = name
		d.maxInterval[id] = time.Duration(iv)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load check names: %w", err)
	}
	return nil
}

// lookup returns the id of a check and the largest interval recorded for it.
func (d *dictionary) lookup(name string) (id int32, maxInterval time.Duration, ok bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	id, ok = d.ids[name]
	if !ok {
		return 0, 0, false
	}
	return id, d.maxInterval[id], true
}

func (d *dictionary) name(id int32) string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if id <= 0 || int(id) >= len(d.names) {
		return ""
	}
	return d.names[id]
}

// ensure makes sure every check in rows has an id and a max interval at least
// as large as its rows' intervals, in the table first and then in memory, and
// returns the ids in row order.
func (d *dictionary) ensure(ctx context.Context, conn *sql.Conn, rows []ResultRow) ([]int32, error) {
	var changes []change
	pending := map[string]int{} // name -> index in changes
	d.mu.RLock()
	next := int32(len(d.names))
	for _, r := range rows {
		if i, ok := pending[r.Check]; ok {
			changes[i].iv = max(changes[i].iv, r.Interval)
			continue
		}
		id, known := d.ids[r.Check]
		switch {
		case !known:
			pending[r.Check] = len(changes)
			changes = append(changes, change{id: next, name: r.Check, iv: r.Interval, isNew: true})
			next++
		case r.Interval > d.maxInterval[id]:
			pending[r.Check] = len(changes)
			changes = append(changes, change{id: id, name: r.Check, iv: r.Interval})
		}
	}
	d.mu.RUnlock()

	if len(changes) > 0 {
		if err := d.store(ctx, conn, changes...); err != nil {
			return nil, err
		}
		d.mu.Lock()
		for _, c := range changes {
			if c.isNew {
				d.ids[c.name] = c.id
				d.names = append(d.names, c.name)
				d.maxInterval = append(d.maxInterval, c.iv)
			} else {
				d.maxInterval[c.id] = max(d.maxInterval[c.id], c.iv)
			}
		}
		d.mu.Unlock()
	}

	ids := make([]int32, len(rows))
	d.mu.RLock()
	for i, r := range rows {
		ids[i] = d.ids[r.Check]
	}
	d.mu.RUnlock()
	return ids, nil
}

// change is a new check name or a larger max interval for a known one.
type change struct {
	id    int32
	name  string
	iv    time.Duration
	isNew bool
}

// store writes changes to check_names: new names through the appender (a
// first batch can bring thousands of checks at once), raised intervals with
// UPDATE, which is rare.
func (d *dictionary) store(ctx context.Context, conn *sql.Conn, changes ...change) error {
	var news, raised []change
	for _, c := range changes {
		if c.isNew {
			news = append(news, c)
		} else {
			raised = append(raised, c)
		}
	}
	if len(news) > 0 {
		err := withAppender(ctx, conn, "check_names", func(a *duckdb.Appender) error {
			for _, c := range news {
				if err := a.AppendRow(c.id, c.name, int64(c.iv)); err != nil {
					return fmt.Errorf("add check name %q: %w", c.name, err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if len(raised) == 0 {
		return nil
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("update check intervals: %w", err)
	}
	defer tx.Rollback()
	for _, c := range raised {
		if _, err := tx.ExecContext(ctx, `UPDATE check_names SET max_interval_ns = greatest(max_interval_ns, $2) WHERE id = $1`,
			c.id, int64(c.iv)); err != nil {
			return fmt.Errorf("update interval of check %q: %w", c.name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("update check intervals: commit: %w", err)
	}
	return nil
}
