package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nocsoc/nocsoc/internal/notify"
)

// Notification channels. Secret and Email.Password are kept in their own
// columns and returned by every read here, because the sender needs them;
// the API hides them (json:"-") and the audit log only says whether they
// are set.

func channelTarget(id int64) string { return "channel:" + strconv.FormatInt(id, 10) }

// secretMark stands for a secret in the audit log.
const secretMark = "<secret>"

// channelAudit is what the audit log records of a channel: the channel's
// own JSON (which omits secrets) plus a marker for each secret that is set.
type channelAudit struct {
	notify.Channel
	Secret        string `json:"secret,omitempty"`
	EmailPassword string `json:"email_password,omitempty"`
}

func auditChannel(ch notify.Channel) channelAudit {
	a := channelAudit{Channel: ch}
	if ch.Secret != "" {
		a.Secret = secretMark
	}
	if ch.Email != nil && ch.Email.Password != "" {
		a.EmailPassword = secretMark
	}
	return a
}

func validateChannel(ch notify.Channel) error {
	switch {
	case strings.TrimSpace(ch.Name) == "":
		return invalid("name", "is required")
	case !slices.Contains(notify.Types, ch.Type):
		return invalid("type", fmt.Sprintf("%q is not one of %s", ch.Type, strings.Join(notify.Types, ", ")))
	}
	if ch.Type == notify.TypeEmail {
		switch {
		case ch.Email == nil:
			return invalid("email", "is required for an email channel")
		case len(ch.Email.To) == 0:
			return invalid("email.to", "at least one recipient is required")
		case ch.Email.From == "":
			return invalid("email.from", "is required")
		case ch.Email.Host == "":
			return invalid("email.host", "is required")
		case ch.Email.Port < 0 || ch.Email.Port > 65535:
			return invalid("email.port", "must be between 0 and 65535")
		}
		return nil
	}
	if ch.URL == "" {
		return invalid("url", "is required for a "+ch.Type+" channel")
	}
	return nil
}

const channelCols = `id, name, type, url, secret, email, email_password, created_at, provisioned`

func scanChannel(row rowScanner) (notify.Channel, error) {
	var ch notify.Channel
	var email sql.NullString
	var password string
	var created int64
	if err := row.Scan(&ch.ID, &ch.Name, &ch.Type, &ch.URL, &ch.Secret, &email, &password, &created, &ch.Provisioned); err != nil {
		return notify.Channel{}, err
	}
	ch.CreatedAt = fromMS(created)
	if email.Valid {
		ch.Email = &notify.EmailSettings{}
		if err := json.Unmarshal([]byte(email.String), ch.Email); err != nil {
			return notify.Channel{}, fmt.Errorf("decode email settings of channel %d: %w", ch.ID, err)
		}
		ch.Email.Password = password
	}
	return ch, nil
}

// channelRow splits ch into its email JSON (without the password, which
// EmailSettings tags json:"-") and the password.
func channelRow(ch notify.Channel) (email sql.NullString, password string, err error) {
	if ch.Email == nil {
		return sql.NullString{}, "", nil
	}
	email, err = jsonText(ch.Email)
	return email, ch.Email.Password, err
}

// CreateChannel stores a new channel and returns it with its ID;
// ErrConflict when the name (any case) is taken.
func (s *Store) CreateChannel(ctx context.Context, actor Actor, ch notify.Channel) (notify.Channel, error) {
	if err := validateChannel(ch); err != nil {
		return notify.Channel{}, fmt.Errorf("create channel: %w", err)
	}
	if ch.CreatedAt.IsZero() {
		ch.CreatedAt = s.now()
	}
	ch.CreatedAt = fromMS(ms(ch.CreatedAt))
	email, password, err := channelRow(ch)
	if err != nil {
		return notify.Channel{}, fmt.Errorf("create channel: encode email settings: %w", err)
	}
	err = s.write(ctx, "channel.create", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO channels (name, type, url, secret, email, email_password, created_at, provisioned)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			ch.Name, ch.Type, ch.URL, ch.Secret, email, password, ms(ch.CreatedAt), ch.Provisioned).Scan(&ch.ID)
		if isUnique(err) {
			return fmt.Errorf("create channel %q: name already taken: %w", ch.Name, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create channel %q: %w", ch.Name, err)
		}
		return s.audit(ctx, tx, actor, "channel.create", channelTarget(ch.ID), nil, auditChannel(ch))
	})
	if err != nil {
		return notify.Channel{}, err
	}
	return ch, nil
}

// UpdateChannel replaces channel ch.ID (keeping CreatedAt) and returns the
// stored result. An empty Secret or Email.Password keeps the stored one,
// so an API client can change a channel without re-entering its secrets.
// ErrNotFound if it does not exist; ErrConflict when the new name is
// taken.
func (s *Store) UpdateChannel(ctx context.Context, actor Actor, ch notify.Channel) (notify.Channel, error) {
	if err := validateChannel(ch); err != nil {
		return notify.Channel{}, fmt.Errorf("update channel: %w", err)
	}
	if ch.Email != nil {
		e := *ch.Email // never write through the caller's pointer
		ch.Email = &e
	}
	err := s.write(ctx, "channel.update", func(tx *sql.Tx) error {
		before, err := getChannel(ctx, tx, `id = ?`, ch.ID)
		if err != nil {
			return fmt.Errorf("update channel: %w", err)
		}
		ch.CreatedAt = before.CreatedAt
		if ch.Secret == "" {
			ch.Secret = before.Secret
		}
		if ch.Email != nil && ch.Email.Password == "" && before.Email != nil {
			ch.Email.Password = before.Email.Password
		}
		email, password, err := channelRow(ch)
		if err != nil {
			return fmt.Errorf("update channel %d: encode email settings: %w", ch.ID, err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE channels SET name = ?, type = ?, url = ?, secret = ?, email = ?,
			email_password = ?, provisioned = ? WHERE id = ?`,
			ch.Name, ch.Type, ch.URL, ch.Secret, email, password, ch.Provisioned, ch.ID)
		if isUnique(err) {
			return fmt.Errorf("update channel %d: name %q already taken: %w", ch.ID, ch.Name, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("update channel %d: %w", ch.ID, err)
		}
		return s.audit(ctx, tx, actor, "channel.update", channelTarget(ch.ID), auditChannel(before), auditChannel(ch))
	})
	if err != nil {
		return notify.Channel{}, err
	}
	return ch, nil
}

// DeleteChannel removes a channel; ErrNotFound if it does not exist.
// Routes and policies name channels; the caller checks they no longer do.
func (s *Store) DeleteChannel(ctx context.Context, actor Actor, id int64) error {
	return s.write(ctx, "channel.delete", func(tx *sql.Tx) error {
		before, err := getChannel(ctx, tx, `id = ?`, id)
		if err != nil {
			return fmt.Errorf("delete channel: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM channels WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete channel %d: %w", id, err)
		}
		return s.audit(ctx, tx, actor, "channel.delete", channelTarget(id), auditChannel(before), nil)
	})
}

// GetChannel returns one channel, secrets included.
func (s *Store) GetChannel(ctx context.Context, id int64) (notify.Channel, error) {
	return getChannel(ctx, s.r, `id = ?`, id)
}

// ChannelByName returns the channel with that name (any case), secrets
// included.
func (s *Store) ChannelByName(ctx context.Context, name string) (notify.Channel, error) {
	return getChannel(ctx, s.r, `name = ?`, name)
}

func getChannel(ctx context.Context, q queryer, where string, key any) (notify.Channel, error) {
	ch, err := scanChannel(q.QueryRowContext(ctx, `SELECT `+channelCols+` FROM channels WHERE `+where, key))
	if errors.Is(err, sql.ErrNoRows) {
		return notify.Channel{}, fmt.Errorf("channel %v: %w", key, ErrNotFound)
	}
	if err != nil {
		return notify.Channel{}, fmt.Errorf("channel %v: %w", key, err)
	}
	return ch, nil
}

// ListChannels returns every channel by name, secrets included.
func (s *Store) ListChannels(ctx context.Context) ([]notify.Channel, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+channelCols+` FROM channels ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list channels: %w", err)
	}
	defer rows.Close()
	var out []notify.Channel
	for rows.Next() {
		ch, err := scanChannel(rows)
		if err != nil {
			return nil, fmt.Errorf("list channels: %w", err)
		}
		out = append(out, ch)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list channels: %w", err)
	}
	return out, nil
}
