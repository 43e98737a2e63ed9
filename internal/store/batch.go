package store

import (
	"context"
	"database/sql"
	"fmt"
)

// Tx is one write transaction on the writer connection, handed to the
// function given to Batch. The incident service decides a whole batch of
// ingest work in memory and commits it through one Tx (group commit), so
// its methods are thin: validation, one prepared statement, no audit
// unless Audit is called. A Tx must not be used after fn returns, nor from
// more than one goroutine.
type Tx struct {
	s     *Store
	ctx   context.Context
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

// Batch runs fn in one write transaction on the single writer connection
// and commits it; if fn returns an error, everything fn wrote is rolled
// back and that error is returned.
func (s *Store) Batch(ctx context.Context, fn func(tx *Tx) error) error {
	return s.write(ctx, "batch", func(tx *sql.Tx) error {
		return fn(s.newTx(ctx, tx))
	})
}

func (s *Store) newTx(ctx context.Context, tx *sql.Tx) *Tx {
	return &Tx{s: s, ctx: ctx, tx: tx, stmts: make(map[string]*sql.Stmt, 8)}
}

// stmt binds the store's prepared statement q to this transaction, once
// per Tx. Queries not in hotQueries are prepared on the spot.
func (t *Tx) stmt(q string) (*sql.Stmt, error) {
	if st, ok := t.stmts[q]; ok {
		return st, nil
	}
	var st *sql.Stmt
	if parent, ok := t.s.stmts[q]; ok {
		st = t.tx.StmtContext(t.ctx, parent)
	} else {
		var err error
		if st, err = t.tx.PrepareContext(t.ctx, q); err != nil {
			return nil, err
		}
	}
	t.stmts[q] = st
	return st, nil
}

func (t *Tx) exec(q string, args ...any) (sql.Result, error) {
	st, err := t.stmt(q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(t.ctx, args...)
}

func (t *Tx) queryRow(q string, args ...any) rowScanner {
	st, err := t.stmt(q)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(t.ctx, args...)
}

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(...any) error }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// Audit writes an audit entry in this transaction, for changes a person
// made through the service (acknowledge, hand-off, merge …).
func (t *Tx) Audit(actor Actor, action, target string, before, after any) error {
	if action == "" {
		return invalid("action", "is required")
	}
	return t.s.audit(t.ctx, t.tx, actor, action, target, before, after)
}

// hotQueries are prepared at Open: every query a Tx method runs per alert
// or per incident on the ingest path.
func hotQueries() []string {
	return []string{
		qUpsertAlert, qResolveAlert, qSetAlertIncident, qSetAlertSuppressed, qAckAlert,
		qInsertIncident, qUpdateIncident, qAppendTimeline, qRecordDelivery,
	}
}

func (s *Store) prepare(ctx context.Context) error {
	s.stmts = make(map[string]*sql.Stmt)
	for _, q := range hotQueries() {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		s.stmts[q] = st
	}
	return nil
}
