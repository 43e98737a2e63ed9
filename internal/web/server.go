// Package web serves nocsoc's HTTP interface: the JSON API under /api/v1,
// health and Prometheus endpoints, and push heartbeats. Every API call is
// authenticated with a bearer token and authorised by role.
package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/autoresponse"
	"github.com/nocsoc/nocsoc/internal/decision"
	"github.com/nocsoc/nocsoc/internal/event"
	"github.com/nocsoc/nocsoc/internal/eventstore"
	"github.com/nocsoc/nocsoc/internal/fleet"
	"github.com/nocsoc/nocsoc/internal/incident"
	"github.com/nocsoc/nocsoc/internal/noc"
	"github.com/nocsoc/nocsoc/internal/notify"
	"github.com/nocsoc/nocsoc/internal/response"
	"github.com/nocsoc/nocsoc/internal/store"
)

// Options configures the HTTP handler.
type Options struct {
	Store    *store.Store
	NOC      *noc.Service
	Response *response.Service
	Events   *eventstore.Store
	Metrics  http.Handler
	Logger   *slog.Logger
	Version  string
	// PublicURL is the base of links given out (push URLs), e.g.
	// "https://noc.example.com".
	PublicURL string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Events receives POST /api/v1/events batches (the SOC pipeline);
	// Normalize parses their messages into fields.
	Ingest    EventSink
	Normalize func(*event.Event)
	// Sender sends the test message of POST /api/v1/channels/{id}/test;
	// nil means a default notify.Sender.
	Sender *notify.Sender
	// Fleet serves the agent protocol and the endpoint API; nil disables
	// them.
	Fleet *fleet.Service
	// DecisionClock is the clock of decisions and bouncer keys (expiry);
	// nil means Now.
	DecisionClock func() time.Time
	// DecisionPolicy is the self-lockout guard and range limit; nil means
	// decision.DefaultPolicy plus the public URL's host.
	DecisionPolicy *decision.Policy
	// AutoResponse serves /api/v1/responses (response.go); nil disables it.
	AutoResponse *autoresponse.Service
}

type server struct {
	st        *store.Store
	noc       *noc.Service
	resp      *response.Service
	events    *eventstore.Store
	log       *slog.Logger
	version   string
	publicURL string
	now       func() time.Time
	sender    *notify.Sender
	sink      EventSink
	normalize func(*event.Event)
	fleet     *fleet.Service
	// policy and decisionClock serve decisions.go.
	policy        decision.Policy
	decisionClock func() time.Time
	autoresp      *autoresponse.Service
	// keys caches integration keys for the intake endpoints; bufs pools
	// their request body buffers.
	keys keyCache
	bufs sync.Pool
}

// New returns the HTTP handler.
func New(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sender == nil {
		o.Sender = notify.NewSender(notify.SenderOptions{Logger: o.Logger, Now: o.Now})
	}
	s := &server{st: o.Store, noc: o.NOC, resp: o.Response, events: o.Events, log: o.Logger.With("component", "web"), version: o.Version,
		publicURL: strings.TrimSuffix(o.PublicURL, "/"), now: o.Now, sender: o.Sender, sink: o.Ingest, normalize: o.Normalize, fleet: o.Fleet}
	s.bufs.New = func() any { return new(bytes.Buffer) }
	s.decisionClock = o.DecisionClock
	s.autoresp = o.AutoResponse
	if o.DecisionPolicy != nil {
		s.policy = *o.DecisionPolicy
	} else {
		s.policy = defaultDecisionPolicy(s.publicURL)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	if o.Metrics != nil {
		mux.Handle("GET /metrics", s.authed(auth.RoleViewer, func(w http.ResponseWriter, r *http.Request, _ principal) error {
			o.Metrics.ServeHTTP(w, r)
			return nil
		}))
	}
	// Go runtime profiles, for admins diagnosing the server under load
	// (go tool pprof -http : URL/debug/pprof/profile?seconds=30 with an
	// admin token in the Authorization header).
	for _, name := range []string{"profile", "heap", "goroutine", "allocs", "block", "mutex", "trace"} {
		name := name
		h := http.Handler(pprof.Handler(name))
		switch name {
		case "profile":
			h = http.HandlerFunc(pprof.Profile)
		case "trace":
			h = http.HandlerFunc(pprof.Trace)
		}
		mux.Handle("GET /debug/pprof/"+name, s.authed(auth.RoleAdmin, func(w http.ResponseWriter, r *http.Request, _ principal) error {
			h.ServeHTTP(w, r)
			return nil
		}))
	}

	// Push heartbeats authenticate with the token in the URL.
	mux.HandleFunc("POST /api/v1/push/{token}", s.push)
	mux.HandleFunc("GET /api/v1/push/{token}", s.push)

	route := func(pattern, role string, h handlerFunc) { mux.Handle(pattern, s.authed(role, h)) }
	route("GET /api/v1/me", auth.RoleViewer, s.me)

	route("GET /api/v1/checks", auth.RoleViewer, s.listChecks)
	route("POST /api/v1/checks", auth.RoleOperator, s.createCheck)
	route("GET /api/v1/checks/{name}", auth.RoleViewer, s.getCheck)
	route("PUT /api/v1/checks/{name}", auth.RoleOperator, s.updateCheck)
	route("DELETE /api/v1/checks/{name}", auth.RoleOperator, s.deleteCheck)
	route("POST /api/v1/checks/{name}/run", auth.RoleOperator, s.runCheck)
	route("GET /api/v1/checks/{name}/results", auth.RoleViewer, s.checkResults)
	route("GET /api/v1/checks/{name}/uptime", auth.RoleViewer, s.checkUptime)
	route("GET /api/v1/checks/{name}/changes", auth.RoleViewer, s.checkChanges)

	route("GET /api/v1/maintenance", auth.RoleViewer, s.listWindows)
	route("POST /api/v1/maintenance", auth.RoleOperator, s.createWindow)
	route("GET /api/v1/maintenance/{id}", auth.RoleViewer, s.getWindow)
	route("PUT /api/v1/maintenance/{id}", auth.RoleOperator, s.updateWindow)
	route("DELETE /api/v1/maintenance/{id}", auth.RoleOperator, s.deleteWindow)

	route("GET /api/v1/alerts", auth.RoleViewer, s.listAlerts)
	route("GET /api/v1/alerts/{id}", auth.RoleViewer, s.getAlert)

	route("POST /api/v1/alerts/{id}/move", auth.RoleOperator, s.moveAlert)

	// Alert intake authenticates with the integration's key, not a user
	// token, and is not audited per request (it is the hot path).
	mux.HandleFunc("POST /api/v1/integrations/alertmanager", s.intakeAlertmanager)
	mux.HandleFunc("POST /api/v1/integrations/events", s.intakeEvents)
	mux.HandleFunc("POST /api/v1/integrations/webhook", s.intakeWebhook)
	route("GET /api/v1/integrations", auth.RoleAdmin, s.listIntegrations)
	route("POST /api/v1/integrations", auth.RoleAdmin, s.createIntegration)
	route("DELETE /api/v1/integrations/{id}", auth.RoleAdmin, s.disableIntegration)

	route("GET /api/v1/incidents", auth.RoleViewer, s.listIncidents)
	route("GET /api/v1/incidents/{id}", auth.RoleViewer, s.getIncident)
	route("GET /api/v1/incidents/{id}/alerts", auth.RoleViewer, s.incidentAlerts)
	route("GET /api/v1/incidents/{id}/timeline", auth.RoleViewer, s.incidentTimeline)
	route("POST /api/v1/incidents/{id}/acknowledge", auth.RoleOperator, s.statusAction(incident.StatusAcknowledged))
	route("POST /api/v1/incidents/{id}/resolve", auth.RoleOperator, s.statusAction(incident.StatusResolved))
	route("POST /api/v1/incidents/{id}/close", auth.RoleOperator, s.statusAction(incident.StatusClosed))
	route("POST /api/v1/incidents/{id}/reopen", auth.RoleOperator, s.statusAction(incident.StatusTriggered))
	route("POST /api/v1/incidents/{id}/status", auth.RoleOperator, s.setIncidentStatus)
	route("POST /api/v1/incidents/{id}/escalate", auth.RoleOperator, s.escalateIncident(false))
	route("POST /api/v1/incidents/{id}/deescalate", auth.RoleOperator, s.escalateIncident(true))
	route("POST /api/v1/incidents/{id}/handoff", auth.RoleOperator, s.handoffIncident)
	route("POST /api/v1/incidents/{id}/assign", auth.RoleOperator, s.assignIncident)
	route("POST /api/v1/incidents/{id}/notes", auth.RoleOperator, s.addNote)
	route("POST /api/v1/incidents/{id}/tasks", auth.RoleOperator, s.addTask)
	route("POST /api/v1/incidents/{id}/tasks/{task}/done", auth.RoleOperator, s.setTaskDone)
	route("POST /api/v1/incidents/{id}/observables", auth.RoleOperator, s.addObservable)
	route("GET /api/v1/incidents/{id}/postmortem", auth.RoleViewer, s.getPostmortem)
	route("PUT /api/v1/incidents/{id}/postmortem", auth.RoleOperator, s.putPostmortem)
	route("POST /api/v1/incidents/{id}/merge", auth.RoleOperator, s.mergeIncident)

	route("GET /api/v1/silences", auth.RoleViewer, s.listSilences)
	route("POST /api/v1/silences", auth.RoleOperator, s.createSilence)
	route("DELETE /api/v1/silences/{id}", auth.RoleOperator, s.expireSilence)

	route("GET /api/v1/escalation-policies", auth.RoleViewer, s.listPolicies)
	route("POST /api/v1/escalation-policies", auth.RoleAdmin, s.createPolicy)
	route("GET /api/v1/escalation-policies/{id}", auth.RoleViewer, s.getPolicy)
	route("PUT /api/v1/escalation-policies/{id}", auth.RoleAdmin, s.updatePolicy)
	route("DELETE /api/v1/escalation-policies/{id}", auth.RoleAdmin, s.deletePolicy)

	route("GET /api/v1/schedules", auth.RoleViewer, s.listSchedules)
	route("POST /api/v1/schedules", auth.RoleOperator, s.createSchedule)
	route("GET /api/v1/schedules/{id}", auth.RoleViewer, s.getSchedule)
	route("PUT /api/v1/schedules/{id}", auth.RoleOperator, s.updateSchedule)
	route("DELETE /api/v1/schedules/{id}", auth.RoleOperator, s.deleteSchedule)
	route("GET /api/v1/oncall", auth.RoleViewer, s.whoIsOnCall)

	route("GET /api/v1/channels", auth.RoleViewer, s.listChannels)
	route("POST /api/v1/channels", auth.RoleAdmin, s.createChannel)
	route("GET /api/v1/channels/{id}", auth.RoleViewer, s.getChannel)
	route("PUT /api/v1/channels/{id}", auth.RoleAdmin, s.updateChannel)
	route("DELETE /api/v1/channels/{id}", auth.RoleAdmin, s.deleteChannel)
	route("POST /api/v1/channels/{id}/test", auth.RoleOperator, s.testChannel)

	route("GET /api/v1/runbooks", auth.RoleViewer, s.listRunbooks)
	route("POST /api/v1/runbooks", auth.RoleOperator, s.createRunbook)
	route("GET /api/v1/runbooks/{id}", auth.RoleViewer, s.getRunbook)
	route("PUT /api/v1/runbooks/{id}", auth.RoleOperator, s.updateRunbook)
	route("DELETE /api/v1/runbooks/{id}", auth.RoleOperator, s.deleteRunbook)

	route("GET /api/v1/notifications", auth.RoleViewer, s.listDeliveries)
	route("GET /api/v1/notifications/dead-letters", auth.RoleViewer, s.deadLetters)

	route("GET /api/v1/metrics/operations", auth.RoleViewer, s.operationMetrics)

	route("POST /api/v1/events", auth.RoleOperator, s.postEvents)
	route("GET /api/v1/events", auth.RoleViewer, s.searchEvents)
	route("GET /api/v1/events/stats", auth.RoleViewer, s.eventStats)
	route("GET /api/v1/events/export", auth.RoleViewer, s.exportEvents)
	route("GET /api/v1/pivot", auth.RoleViewer, s.pivot)

	route("GET /api/v1/tokens", auth.RoleViewer, s.listTokens)
	// Creating a token also accepts HTTP Basic (user name and password), so
	// a person can get their first token with curl -u.
	mux.Handle("POST /api/v1/tokens", s.authenticated(auth.RoleViewer, true, s.createToken))
	route("DELETE /api/v1/tokens/{id}", auth.RoleViewer, s.revokeToken)

	route("GET /api/v1/users", auth.RoleAdmin, s.listUsers)
	route("POST /api/v1/users", auth.RoleAdmin, s.createUser)

	route("GET /api/v1/audit", auth.RoleAdmin, s.listAudit)

	s.registerAgents(mux, route)
	s.registerDecisions(mux, route)
	s.registerJobs(mux, route)       // jobs.go: jobs, updates, software
	s.registerBackups(mux, route)    // backups.go: backups, mail posture, file integrity
	s.registerFleetOps(mux, route)   // fleetops.go: threshold rules, forecasts, agent logs
	s.registerCompliance(mux, route) // compliance.go
	s.registerResponse(mux, route)   // response.go: automatic response, approvals

	// Unknown API paths get a JSON 404; a known path with the wrong method
	// gets a 405 with the Allow header.
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/api/" {
				allow = append(allow, m)
			}
		}
		path := r.URL.Path
		if strings.HasPrefix(path, "/api/v1/push/") {
			path = "/api/v1/push/…" // never echo a secret token
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, path, strings.Join(allow, ", "))})
			return
		}
		writeJSON(w, http.StatusNotFound, errorBody{Error: "no such endpoint: " + r.Method + " " + path})
	})
	return securityHeaders(mux)
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.version})
}

// principal is who makes a request.
type principal struct {
	User    store.User
	TokenID int64
	Remote  string
}

func (p principal) actor() store.Actor {
	return store.Actor{Name: p.User.Name, Remote: p.Remote}
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, p principal) error

// authed authenticates the bearer token and checks the role, then runs h
// and writes its error, if any.
func (s *server) authed(need string, h handlerFunc) http.Handler {
	return s.authenticated(need, false, h)
}

func (s *server) authenticated(need string, basic bool, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p principal
		var err error
		if user, pw, ok := r.BasicAuth(); ok && basic {
			p, err = s.authenticatePassword(r, user, pw)
		} else {
			p, err = s.authenticate(r)
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="nocsoc"`)
			writeJSON(w, http.StatusUnauthorized, errorBody{Error: err.Error()})
			return
		}
		if !auth.Allows(p.User.Role, need) {
			writeJSON(w, http.StatusForbidden, errorBody{Error: "role " + p.User.Role + " may not do this; needs " + need})
			return
		}
		if err := h(w, r, p); err != nil {
			s.writeError(w, r, err)
		}
	})
}

var errNoToken = errors.New("authentication required: send Authorization: Bearer <token>")

func (s *server) authenticate(r *http.Request) (principal, error) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return principal{}, errNoToken
	}
	t, u, err := s.st.TokenByHash(r.Context(), auth.HashToken(strings.TrimSpace(tok)))
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Error("token lookup", "err", err)
		}
		return principal{}, errors.New("invalid token")
	}
	now := s.now()
	switch {
	case t.RevokedAt != nil:
		return principal{}, errors.New("token revoked")
	case t.ExpiresAt != nil && now.After(*t.ExpiresAt):
		return principal{}, errors.New("token expired")
	case u.Disabled:
		return principal{}, errors.New("user disabled")
	}
	if err := s.st.TouchToken(context.WithoutCancel(r.Context()), t.ID, now); err != nil {
		s.log.Warn("touch token", "err", err)
	}
	return principal{User: u, TokenID: t.ID, Remote: remoteIP(r)}, nil
}

func (s *server) authenticatePassword(r *http.Request, name, pw string) (principal, error) {
	bad := errors.New("invalid user name or password")
	u, err := s.st.UserByName(r.Context(), name)
	if err != nil {
		// Hash anyway so a missing user takes as long as a wrong password.
		_, _ = auth.VerifyPassword(dummyHash, pw)
		return principal{}, bad
	}
	ok, err := auth.VerifyPassword(u.PasswordHash, pw)
	if err != nil || !ok || u.Disabled {
		return principal{}, bad
	}
	return principal{User: u, Remote: remoteIP(r)}, nil
}

// dummyHash is a valid argon2id hash of a random password, used to keep
// the timing of unknown-user logins equal to wrong-password ones.
const dummyHash = "$argon2id$v=19$m=65536,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$2sVv0n4tyc3ZC1xvlAUMX6kZ6fHCh1GEfD93rnbB7m4"

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *server) me(w http.ResponseWriter, r *http.Request, p principal) error {
	writeJSON(w, http.StatusOK, map[string]any{"user": p.User.Name, "role": p.User.Role, "token_id": p.TokenID})
	return nil
}
