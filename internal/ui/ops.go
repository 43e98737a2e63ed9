package ui

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/detect"
	"github.com/nocsoc/nocsoc/internal/event"
	"github.com/nocsoc/nocsoc/internal/eventstore"
	"github.com/nocsoc/nocsoc/internal/incident"
	"github.com/nocsoc/nocsoc/internal/notify"
	"github.com/nocsoc/nocsoc/internal/response"
	"github.com/nocsoc/nocsoc/internal/store"
)

// OpsStore is the state behind the Investigate, Rules, Operations metrics
// and Admin pages. *store.Store implements it; every change takes the
// Actor so the audit log records who made it.
type OpsStore interface {
	ListUsers(ctx context.Context) ([]store.User, error)
	UserByID(ctx context.Context, id int64) (store.User, error)
	CreateUser(ctx context.Context, actor store.Actor, u store.User) (store.User, error)
	SetRole(ctx context.Context, actor store.Actor, userID int64, role string) error
	SetUserDisabled(ctx context.Context, actor store.Actor, userID int64, disabled bool) error

	ListTokens(ctx context.Context, userID int64) ([]store.Token, error)
	GetToken(ctx context.Context, id int64) (store.Token, error)
	CreateToken(ctx context.Context, actor store.Actor, t store.Token) (store.Token, error)
	RevokeToken(ctx context.Context, actor store.Actor, id int64, at time.Time) error

	ListIntegrations(ctx context.Context) ([]alert.Integration, error)
	CreateIntegration(ctx context.Context, actor store.Actor, it alert.Integration) (alert.Integration, error)
	DisableIntegration(ctx context.Context, actor store.Actor, id int64) error

	ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error)

	AlertsByLabelValue(ctx context.Context, keys []string, value string, from, to time.Time, limit int) ([]alert.Alert, error)
	GetIncident(ctx context.Context, id int64) (incident.Incident, error)
	IncidentsForMetrics(ctx context.Context, from, to time.Time) ([]incident.Incident, error)
	AlertVolume(ctx context.Context, from, to time.Time) ([]store.AlertVolumeRow, error)

	DisabledRules(ctx context.Context) (map[string]bool, error)
	SetRuleDisabled(ctx context.Context, actor store.Actor, ruleID string, disabled bool) error
}

// EventSearch is the log search the Investigate page runs.
// *eventstore.Store implements it.
type EventSearch interface {
	// AwaitSearchable and SearchWait bound the page's wait for the
	// loader (eventstore.Store.AwaitSearchable).
	AwaitSearchable(ctx context.Context, wait time.Duration) (int, error)
	SearchWait() time.Duration
	SearchEvents(ctx context.Context, q eventstore.EventQuery) ([]event.Event, string, error)
	EventStats(ctx context.Context, q eventstore.StatsQuery) ([]eventstore.Bucket, error)
	ExportEvents(ctx context.Context, q eventstore.EventQuery, w io.Writer, format string) (int64, error)
	EntityEvents(ctx context.Context, q eventstore.EntityQuery) ([]event.Event, error)
}

// opsDeps are the optional parts the later pages use; a nil part makes its
// page say what is missing instead of failing.
type opsDeps struct {
	ops    OpsStore
	search EventSearch
	det    *detect.Detector
	resp   *response.Service
	sender *notify.Sender
}

// initOps resolves the optional dependencies and applies the stored
// disabled-rule set to the detector, so rules switched off in the console
// stay off across restarts.
func (u *UI) initOps(o Options) error {
	d := opsDeps{ops: o.Ops, det: o.Detector, resp: o.Response, sender: o.Sender}
	if d.ops == nil {
		d.ops, _ = o.Store.(OpsStore)
	}
	d.search, _ = o.Events.(EventSearch)
	if d.sender == nil {
		d.sender = notify.NewSender(notify.SenderOptions{Logger: o.Logger, Now: o.Now})
	}
	u.ext = d
	if d.det != nil && d.ops != nil {
		// New has no context; loading a handful of ids is bounded here.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		off, err := d.ops.DisabledRules(ctx)
		if err != nil {
			return fmt.Errorf("load disabled rules: %w", err)
		}
		d.det.SetDisabled(off)
	}
	return nil
}

// needOps is the error of a page whose store is missing.
func (u *UI) needOps() error {
	if u.ext.ops == nil {
		return errorf(503, "This page needs the state store, which this server was started without.")
	}
	return nil
}
