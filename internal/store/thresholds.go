package store

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"strings"
	"time"
)

// thresholdsSchema is this file's migration (migrations.go): what the fleet
// operations (thresholds, storage forecasting, root-cause attribution)
// keep in the state store.
//
// endpoint_addresses are the IP addresses of each endpoint's latest
// inventory, so a check's target address finds its endpoint without
// reading inventories. endpoint_disk_hours hold one point per hour per
// filesystem (the last used/total bytes seen in that hour) for the storage
// forecast's 7-day regression: 168 small rows per filesystem instead of
// 20,000 raw samples.
const thresholdsSchema = `
CREATE TABLE endpoint_addresses (
	endpoint_id TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
	addr        TEXT NOT NULL,
	PRIMARY KEY (endpoint_id, addr)
);
CREATE INDEX endpoint_addresses_addr ON endpoint_addresses(addr);
CREATE INDEX endpoints_hostname_nocase ON endpoints(hostname COLLATE NOCASE);
CREATE TABLE endpoint_disk_hours (
	endpoint_id TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
	mount       TEXT NOT NULL,
	hour        INTEGER NOT NULL,
	used_bytes  REAL NOT NULL,
	total_bytes REAL NOT NULL,
	PRIMARY KEY (endpoint_id, mount, hour)
) WITHOUT ROWID;
`

// SetEndpointAddresses replaces an endpoint's known IP addresses.
func (s *Store) SetEndpointAddresses(ctx context.Context, endpointID string, addrs []string) error {
	return s.write(ctx, "endpoint.addresses", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM endpoint_addresses WHERE endpoint_id = ?`, endpointID); err != nil {
			return fmt.Errorf("set endpoint addresses: %w", err)
		}
		for _, a := range addrs {
			_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO endpoint_addresses (endpoint_id, addr) VALUES (?, ?)`, endpointID, strings.ToLower(a))
			if isForeignKey(err) {
				return fmt.Errorf("endpoint %q: %w", endpointID, ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("set endpoint addresses: %w", err)
			}
		}
		return nil
	})
}

// EndpointsForHost returns the endpoints (revoked ones excluded) whose
// hostname is host (case-insensitive; a short name also matches its
// fully qualified form and the reverse) or that have host among their IP
// addresses.
func (s *Store) EndpointsForHost(ctx context.Context, host string) ([]Endpoint, error) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "" {
		return nil, nil
	}
	short, like := host, ""
	if net.ParseIP(host) == nil {
		// Names also match across short and fully qualified forms.
		short, _, _ = strings.Cut(host, ".")
		like = likeEscape(host) + ".%"
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+endpointCols+` FROM endpoints WHERE status != ? AND (
		hostname = ? COLLATE NOCASE OR hostname = ? COLLATE NOCASE OR lower(hostname) LIKE ? ESCAPE '\'
		OR id IN (SELECT endpoint_id FROM endpoint_addresses WHERE addr = ?)) ORDER BY hostname, id`,
		EndpointRevoked, host, short, like, host)
	if err != nil {
		return nil, fmt.Errorf("endpoints for host %q: %w", host, err)
	}
	defer rows.Close()
	var out []Endpoint
	for rows.Next() {
		e, err := scanEndpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("endpoints for host %q: %w", host, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// DiskHour is one hourly point of a filesystem's usage.
type DiskHour struct {
	Mount      string
	Hour       time.Time
	UsedBytes  float64
	TotalBytes float64
}

// PutDiskHours records hourly points and deletes an endpoint's points
// older than keepFrom.
func (s *Store) PutDiskHours(ctx context.Context, endpointID string, pts []DiskHour, keepFrom time.Time) error {
	return s.write(ctx, "endpoint.disk_hours", func(tx *sql.Tx) error {
		for _, p := range pts {
			_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO endpoint_disk_hours (endpoint_id, mount, hour, used_bytes, total_bytes) VALUES (?, ?, ?, ?, ?)`,
				endpointID, p.Mount, ms(p.Hour), p.UsedBytes, p.TotalBytes)
			if isForeignKey(err) {
				return fmt.Errorf("endpoint %q: %w", endpointID, ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("put disk hours: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM endpoint_disk_hours WHERE endpoint_id = ? AND hour < ?`, endpointID, ms(keepFrom)); err != nil {
			return fmt.Errorf("put disk hours: %w", err)
		}
		return nil
	})
}

// DiskHours returns an endpoint's hourly points from from on, oldest first.
func (s *Store) DiskHours(ctx context.Context, endpointID string, from time.Time) ([]DiskHour, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT mount, hour, used_bytes, total_bytes FROM endpoint_disk_hours
		WHERE endpoint_id = ? AND hour >= ? ORDER BY hour, mount`, endpointID, ms(from))
	if err != nil {
		return nil, fmt.Errorf("disk hours: %w", err)
	}
	defer rows.Close()
	var out []DiskHour
	for rows.Next() {
		var p DiskHour
		var h int64
		if err := rows.Scan(&p.Mount, &h, &p.UsedBytes, &p.TotalBytes); err != nil {
			return nil, fmt.Errorf("disk hours: %w", err)
		}
		p.Hour = fromMS(h)
		out = append(out, p)
	}
	return out, rows.Err()
}

// EndpointAddresses returns an endpoint's known IP addresses.
func (s *Store) EndpointAddresses(ctx context.Context, endpointID string) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT addr FROM endpoint_addresses WHERE endpoint_id = ? ORDER BY addr`, endpointID)
	if err != nil {
		return nil, fmt.Errorf("endpoint addresses: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, fmt.Errorf("endpoint addresses: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
