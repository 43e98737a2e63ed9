// Package ui owns the web console: server-rendered html/template pages
// embedded in the binary, the session and CSRF middleware that guards them,
// content-hashed static assets, the Server-Sent Events hub that pushes live
// changes to open consoles, and the SVG chart helpers the pages draw with.
//
// Later pages (SOC queue, incidents, investigate, admin) are added the same
// way as the NOC pages here; docs/console.md says how.
package ui

import (
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/decision"
	"github.com/nocsoc/nocsoc/internal/detect"
	"github.com/nocsoc/nocsoc/internal/eventstore"
	"github.com/nocsoc/nocsoc/internal/maintenance"
	"github.com/nocsoc/nocsoc/internal/monitor"
	"github.com/nocsoc/nocsoc/internal/noc"
	"github.com/nocsoc/nocsoc/internal/notify"
	"github.com/nocsoc/nocsoc/internal/response"
	"github.com/nocsoc/nocsoc/internal/store"
)

//go:embed templates static
var files embed.FS

// Store is the state the console reads and writes: users, sessions and the
// audit log. *store.Store implements it.
type Store interface {
	UserByName(ctx context.Context, name string) (store.User, error)
	SetPassword(ctx context.Context, actor store.Actor, userID int64, hash string) error
	CreateSession(ctx context.Context, userID int64, tokenHash, csrf string, now, expires time.Time) (store.Session, error)
	SessionByHash(ctx context.Context, tokenHash string, now time.Time) (store.Session, store.User, error)
	TouchSession(ctx context.Context, id int64, at time.Time) error
	DeleteSession(ctx context.Context, tokenHash string) error
	DeleteUserSessions(ctx context.Context, userID, keepID int64) (int, error)
	AppendAudit(ctx context.Context, actor store.Actor, action, target string, before, after any) error
}

// NOC is the monitoring service the console shows and drives.
// *noc.Service implements it.
type NOC interface {
	Checks() []noc.CheckView
	Check(name string) (noc.CheckView, error)
	UpdateCheck(ctx context.Context, actor store.Actor, c check.Spec) (noc.CheckView, error)
	RunNow(name string) error
	Windows() []maintenance.Window
	Subscribe(fn func(monitor.Outcome)) (cancel func())
}

// History is the check history the console charts. *eventstore.Store
// implements it.
type History interface {
	Results(ctx context.Context, f eventstore.ResultFilter) ([]eventstore.ResultRow, error)
	Uptime(ctx context.Context, checkName string, from, to time.Time) (eventstore.Uptime, error)
	StateChanges(ctx context.Context, checkName string, from, to time.Time, limit int) ([]eventstore.StateChange, error)
}

// BatchUptimer is optionally implemented by a History that can compute the
// uptime of every check over one range in a single query. The NOC wall uses
// it when available; otherwise it asks per check (fine for hundreds of
// checks, too slow for ten thousand).
type BatchUptimer interface {
	UptimeAll(ctx context.Context, from, to time.Time) (map[string]eventstore.Uptime, error)
}

// The DuckDB event store computes the wall's uptimes in one query; this
// fails the build if it stops doing so and the wall falls back to a query
// per check.
var _ BatchUptimer = (*eventstore.Store)(nil)

// Options configures New.
type Options struct {
	Store  Store
	NOC    NOC
	Events History
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Secure marks the session cookie Secure (and names it with the
	// __Host- prefix); set it when the console is served over TLS, directly
	// or behind a TLS-terminating proxy.
	Secure bool
	// StatsTTL is how long the NOC wall's uptime and sparkline figures are
	// cached (default 30s).
	StatsTTL time.Duration

	// Detector is the running detection engine the Rules pages list and
	// switch; nil shows detection as not running.
	Detector *detect.Detector
	// Response is the incident workflow (on-call schedules, channels; the
	// SOC queue and incident pages, which answer 503 without it and then
	// need a Store that implements IncidentStore).
	Response *response.Service
	// Sender sends the admin page's channel test messages; nil means a
	// default notify.Sender.
	Sender *notify.Sender
	// Ops is the state the investigate, metrics and admin pages read and
	// change; nil means Store when it implements OpsStore.
	Ops OpsStore

	// Fleet is the endpoint fleet the endpoint pages show (*fleet.Service);
	// nil makes those pages say the fleet is not connected (endpoints.go).
	Fleet FleetReader
	// DecisionPolicy is the self-lockout guard for decisions made in the
	// console; nil means decision.DefaultPolicy(). The address a request
	// reached the server on and the requester's address are always added
	// (response.go).
	DecisionPolicy *decision.Policy
	// DecisionClock is the clock decisions start and expire on; nil means
	// Now. Pass the API's clock so both agree on what is active.
	DecisionClock func() time.Time
	// Responder is the active-response service (*autoresponse.Service):
	// with it, blocks from the console go through its approval, rate
	// limits and enforcement, and the approvals page and "isolate host"
	// buttons work; without it, blocks are stored as decisions directly.
	Responder Responder

	// LoginFailures failed sign-ins within LoginWindow, from one source
	// address or for one user name, lock further attempts from it or for
	// it until the oldest failure leaves the window (defaults 5 and 15m;
	// ratelimit.go).
	LoginFailures int
	LoginWindow   time.Duration
}

// UI is the web console's HTTP handler. Close it before the HTTP server is
// shut down, so open event streams end.
type UI struct {
	st     Store
	noc    NOC
	events History
	log    *slog.Logger
	now    func() time.Time
	secure bool

	mux    *http.ServeMux
	pages  map[string]*pageTemplate
	assets *assets
	hub    *Hub
	unsub  func()

	// dummyHash is verified against when a login names an unknown user,
	// so the response time does not reveal which names exist. It is made
	// on first use: argon2id is too slow to pay for at every start.
	dummyOnce sync.Once
	dummyHash string

	// logins limits failed sign-ins (ratelimit.go).
	logins *loginLimiter

	statsTTL time.Duration
	// wallCache holds the NOC wall's figures (wall.go); firstWait bounds
	// how long a render waits for their first computation (tests).
	wallCache wallStatsState
	firstWait time.Duration
	// ext holds what the investigate, rules, metrics, on-call and admin
	// pages use (ops.go).
	ext opsDeps
	// soc holds what the SOC queue and incident pages use (soc.go).
	soc socState
	// fleet holds what the endpoint pages use (endpoints.go); resp what
	// the decision and approval pages use (response.go).
	fleet fleetState
	resp  respState
}

// New parses the templates, hashes the static assets and subscribes to the
// NOC's state changes. A template that does not parse fails New.
func New(o Options) (*UI, error) {
	if o.Store == nil || o.NOC == nil || o.Events == nil {
		return nil, errors.New("ui: Store, NOC and Events are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StatsTTL <= 0 {
		o.StatsTTL = 30 * time.Second
	}
	u := &UI{
		st: o.Store, noc: o.NOC, events: o.Events,
		log: o.Logger.With("component", "ui"), now: o.Now, secure: o.Secure,
		hub: NewHub(), statsTTL: o.StatsTTL,
		logins: newLoginLimiter(cmp.Or(o.LoginFailures, DefaultLoginFailures), cmp.Or(o.LoginWindow, DefaultLoginWindow),
			loginLimiterKeys),
	}
	var err error
	if u.assets, err = loadAssets(files); err != nil {
		return nil, fmt.Errorf("ui: %w", err)
	}
	if u.pages, err = parsePages(files, u.funcs()); err != nil {
		return nil, fmt.Errorf("ui: %w", err)
	}
	if err := u.initOps(o); err != nil {
		return nil, fmt.Errorf("ui: %w", err)
	}
	if err := u.initSOC(o); err != nil {
		return nil, err
	}
	u.initEndpoints(o)
	u.initResponse(o)
	u.routes()
	u.unsub = o.NOC.Subscribe(u.checkChanged)
	return u, nil
}

// Hub returns the event hub, so other parts of the server can push live
// events (alerts, incidents) to open consoles.
func (u *UI) Hub() *Hub { return u.hub }

// Close stops listening for NOC changes and ends every open event stream.
func (u *UI) Close() {
	u.unsub()
	u.soc.close()
	u.hub.Close()
}

// ServeHTTP serves the console. Every response carries the security
// headers (CSP and friends), including 404s.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	u.mux.ServeHTTP(w, r)
}

// checkEvent is the payload of the "check" event on the stream.
type checkEvent struct {
	Check     string    `json:"check"`
	State     string    `json:"state"`
	From      string    `json:"from"`
	RootCause string    `json:"root_cause,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	At        time.Time `json:"at"`
}

// checkChanged runs on the NOC's reporting goroutine: it must not block,
// and Publish does not.
func (u *UI) checkChanged(o monitor.Outcome) {
	at := u.now()
	if o.Result != nil {
		at = o.Result.Time
	}
	data, err := json.Marshal(checkEvent{Check: o.Check, State: string(o.To), From: string(o.From),
		RootCause: o.RootCause, Reason: o.Reason, At: at.UTC()})
	if err != nil {
		u.log.Error("encode check event", "err", err)
		return
	}
	u.hub.Publish(Event{Name: "check", Data: data})
}
