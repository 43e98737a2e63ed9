package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
)

// Silences are stored with their matchers as written; parsing them
// (Alertmanager syntax) is package alert's job, which the caller runs
// first so a bad matcher is refused before it gets here.

func silenceTarget(id int64) string { return "silence:" + strconv.FormatInt(id, 10) }

const silenceCols = `id, matchers, starts_at, ends_at, created_by, comment, created_at, expired_at`

func scanSilence(row rowScanner) (alert.Silence, error) {
	var sl alert.Silence
	var matchers string
	var starts, ends, created int64
	var expired sql.NullInt64
	if err := row.Scan(&sl.ID, &matchers, &starts, &ends, &sl.CreatedBy, &sl.Comment, &created, &expired); err != nil {
		return alert.Silence{}, err
	}
	sl.StartsAt, sl.EndsAt, sl.CreatedAt, sl.ExpiredAt = fromMS(starts), fromMS(ends), fromMS(created), fromMSPtr(expired)
	if err := json.Unmarshal([]byte(matchers), &sl.Matchers); err != nil {
		return alert.Silence{}, fmt.Errorf("decode matchers of silence %d: %w", sl.ID, err)
	}
	return sl, nil
}

// CreateSilence stores a new silence and returns it with its ID. It needs
// at least one matcher and EndsAt after StartsAt; CreatedBy defaults to
// the actor and CreatedAt to now.
func (s *Store) CreateSilence(ctx context.Context, actor Actor, sl alert.Silence) (alert.Silence, error) {
	if len(sl.Matchers) == 0 {
		return alert.Silence{}, fmt.Errorf("create silence: %w", invalid("matchers", "at least one is required"))
	}
	for i, m := range sl.Matchers {
		if strings.TrimSpace(m) == "" {
			return alert.Silence{}, fmt.Errorf("create silence: %w", invalid(fmt.Sprintf("matchers[%d]", i), "is empty"))
		}
	}
	switch {
	case sl.StartsAt.IsZero():
		return alert.Silence{}, fmt.Errorf("create silence: %w", invalid("starts_at", "is required"))
	case !sl.EndsAt.After(sl.StartsAt):
		return alert.Silence{}, fmt.Errorf("create silence: %w", invalid("ends_at", "must be after starts_at"))
	}
	if sl.CreatedBy == "" {
		sl.CreatedBy = actor.Name
	}
	if sl.CreatedAt.IsZero() {
		sl.CreatedAt = s.now()
	}
	sl.StartsAt, sl.EndsAt, sl.CreatedAt = fromMS(ms(sl.StartsAt)), fromMS(ms(sl.EndsAt)), fromMS(ms(sl.CreatedAt))
	sl.ExpiredAt = nil
	matchers, err := json.Marshal(sl.Matchers)
	if err != nil {
		return alert.Silence{}, fmt.Errorf("create silence: encode matchers: %w", err)
	}
	err = s.write(ctx, "silence.create", func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `INSERT INTO silences (matchers, starts_at, ends_at, created_by, comment, created_at)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			string(matchers), ms(sl.StartsAt), ms(sl.EndsAt), sl.CreatedBy, sl.Comment, ms(sl.CreatedAt)).Scan(&sl.ID); err != nil {
			return fmt.Errorf("create silence: %w", err)
		}
		return s.audit(ctx, tx, actor, "silence.create", silenceTarget(sl.ID), nil, sl)
	})
	if err != nil {
		return alert.Silence{}, err
	}
	return sl, nil
}

// ExpireSilence ends a silence early at at and returns it. ErrNotFound if
// it does not exist; ErrConflict if it has already ended or was expired.
func (s *Store) ExpireSilence(ctx context.Context, actor Actor, id int64, at time.Time) (alert.Silence, error) {
	if at.IsZero() {
		return alert.Silence{}, fmt.Errorf("expire silence: %w", invalid("expired_at", "is required"))
	}
	at = fromMS(ms(at))
	var out alert.Silence
	err := s.write(ctx, "silence.expire", func(tx *sql.Tx) error {
		before, err := getSilence(ctx, tx, id)
		if err != nil {
			return fmt.Errorf("expire silence: %w", err)
		}
		if before.ExpiredAt != nil || !before.EndsAt.After(at) {
			return fmt.Errorf("expire silence %d: already ended: %w", id, ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE silences SET expired_at = ? WHERE id = ?`, ms(at), id); err != nil {
			return fmt.Errorf("expire silence %d: %w", id, err)
		}
		out = before
		out.ExpiredAt = &at
		return s.audit(ctx, tx, actor, "silence.expire", silenceTarget(id), before, out)
	})
	if err != nil {
		return alert.Silence{}, err
	}
	return out, nil
}

// GetSilence returns one silence.
func (s *Store) GetSilence(ctx context.Context, id int64) (alert.Silence, error) {
	return getSilence(ctx, s.r, id)
}

func getSilence(ctx context.Context, q queryer, id int64) (alert.Silence, error) {
	sl, err := scanSilence(q.QueryRowContext(ctx, `SELECT `+silenceCols+` FROM silences WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return alert.Silence{}, fmt.Errorf("silence %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return alert.Silence{}, fmt.Errorf("silence %d: %w", id, err)
	}
	return sl, nil
}

// ListSilences returns silences newest first: only those not yet ended
// (active or pending) unless includeExpired.
func (s *Store) ListSilences(ctx context.Context, includeExpired bool) ([]alert.Silence, error) {
	q := `SELECT ` + silenceCols + ` FROM silences`
	var args []any
	if !includeExpired {
		q += ` WHERE expired_at IS NULL AND ends_at > ?`
		args = append(args, ms(s.now()))
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY id DESC`, args...)
	if err != nil {
		return nil, fmt.Errorf("list silences: %w", err)
	}
	defer rows.Close()
	var out []alert.Silence
	for rows.Next() {
		sl, err := scanSilence(rows)
		if err != nil {
			return nil, fmt.Errorf("list silences: %w", err)
		}
		out = append(out, sl)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list silences: %w", err)
	}
	return out, nil
}
