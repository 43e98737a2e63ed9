// Package app is nocsoc's composition root: it loads the configuration,
// opens the stores, wires the NOC service and the HTTP interface, and runs
// them until the context ends. Tests boot the whole server through it.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/autoresponse"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/config"
	"github.com/nocsoc/nocsoc/internal/decision"
	"github.com/nocsoc/nocsoc/internal/detect"
	"github.com/nocsoc/nocsoc/internal/eventstore"
	"github.com/nocsoc/nocsoc/internal/fleet"
	"github.com/nocsoc/nocsoc/internal/ingest"
	"github.com/nocsoc/nocsoc/internal/noc"
	"github.com/nocsoc/nocsoc/internal/normalize"
	"github.com/nocsoc/nocsoc/internal/notify"
	"github.com/nocsoc/nocsoc/internal/opmetrics"
	"github.com/nocsoc/nocsoc/internal/response"
	"github.com/nocsoc/nocsoc/internal/runbook"
	"github.com/nocsoc/nocsoc/internal/sigma"
	"github.com/nocsoc/nocsoc/internal/soc"
	"github.com/nocsoc/nocsoc/internal/store"
	"github.com/nocsoc/nocsoc/internal/ui"
	"github.com/nocsoc/nocsoc/internal/web"
	"github.com/nocsoc/nocsoc/rules"
)

// Version is the product version, set at build time with -ldflags.
var Version = "0.1.0-dev"

// Options configures an App. Empty fields take the config file's value,
// then the default.
type Options struct {
	ConfigPath string
	DataDir    string
	Listen     string
	Logger     *slog.Logger
	// Stderr receives the one-time generated admin password.
	Stderr io.Writer
	// AdminPassword sets the first admin's password (NOCSOC_ADMIN_PASSWORD).
	AdminPassword string
	// Now is the clock of the incident workflow (trigger, acknowledge and
	// escalation times); nil means time.Now. Tests use it to drive
	// escalation and to check MTTA/MTTR exactly.
	Now func() time.Time
	// ConfigPoll is how often the config file is checked for changes;
	// default 2s, negative disables watching.
	ConfigPoll time.Duration
	// AgentCheckEvery is how often endpoints are checked for missed
	// heartbeats; default 30s (tests shorten it).
	AgentCheckEvery time.Duration
	// HealthEvery and HealthFor are the SOC pipeline health watcher's
	// period and how long a condition must last (defaults 10s and 1m;
	// tests shorten them). EventLoadEvery is the event store's LoadEvery
	// (default 2s; tests lengthen it to hold a backlog).
	HealthEvery, HealthFor, EventLoadEvery time.Duration
}

// App is a running nocsoc server.
type App struct {
	opts Options
	log  *slog.Logger
	// server holds the settings fixed for the process's life; cfg (under
	// cfgMu) is the last applied config, replaced on reload.
	server  config.Server
	cfg     *config.Config
	cfgMu   sync.Mutex
	st      *store.Store
	events  *eventstore.Store
	noc     *noc.Service
	fleet   *fleet.Service
	resp    *response.Service
	ar      *autoresponse.Service // active response (autoresponse.go helpers at the end)
	ui      *ui.UI
	detect  *detect.Detector
	soc     *soc.Pipeline
	ingest  *ingest.Manager
	handler http.Handler
	ln      net.Listener
	reg     *prometheus.Registry
}

// New loads the configuration, opens the stores and binds the listener.
func New(ctx context.Context, o Options) (*App, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	cfg := config.Default()
	if o.ConfigPath != "" {
		c, err := config.LoadFile(o.ConfigPath)
		if err != nil {
			return nil, err
		}
		cfg = c
	}
	if o.DataDir != "" {
		cfg.Server.DataDir = o.DataDir
	}
	if o.Listen != "" {
		cfg.Server.Listen = o.Listen
	}
	a := &App{opts: o, log: o.Logger, cfg: cfg, server: cfg.Server, reg: prometheus.NewRegistry()}
	if err := a.open(ctx); err != nil {
		a.closeStores()
		return nil, err
	}
	return a, nil
}

func (a *App) open(ctx context.Context) error {
	cfg := a.cfg
	if err := os.MkdirAll(cfg.Server.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	writeLatency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "nocsoc_store_write_seconds",
		Help:    "Latency of writes to the state store (sqlite) and the event store (duckdb).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
	}, []string{"store"})
	a.reg.MustRegister(writeLatency, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	st, err := store.Open(ctx, filepath.Join(cfg.Server.DataDir, "state.db"), a.log)
	if err != nil {
		return err
	}
	a.st = st
	st.OnWrite(func(op string, d time.Duration) { writeLatency.WithLabelValues("sqlite").Observe(d.Seconds()) })

	merges := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "nocsoc_eventstore_file_merges_total", Help: "Merges of small event files into larger ones.",
	})
	a.reg.MustRegister(merges)
	ev, err := eventstore.Open(ctx, eventstore.Options{
		Path:                filepath.Join(cfg.Server.DataDir, "events.duckdb"),
		MemoryLimit:         cfg.Server.EventStore.MemoryLimit,
		CheckpointThreshold: strings.TrimSpace(cfg.Server.EventStore.CheckpointThreshold),
		LoadRows:            cfg.Server.EventStore.LoadRows,
		MaxBacklog:          cfg.Server.EventStore.MaxBacklog,
		LoadEvery:           a.opts.EventLoadEvery,
		SearchWait:          cfg.Server.EventStore.SearchWait.D(),
		Threads:             cfg.Server.EventStore.Threads,
		Logger:              a.log,
		OnWrite:             func(rows int, d time.Duration) { writeLatency.WithLabelValues("duckdb").Observe(d.Seconds()) },
		OnMerge:             func(int, int64) { merges.Inc() },
	})
	if err != nil {
		return err
	}
	a.events = ev
	a.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "nocsoc_eventstore_queue_depth", Help: "Rows waiting to be written to the event store.",
	}, func() float64 { return float64(ev.QueueDepth()) }))
	a.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "nocsoc_eventstore_unloaded_events", Help: "Events acknowledged (durable in the journal) and not yet searchable (not yet in an event file).",
	}, func() float64 { return float64(ev.UnloadedEvents()) }))
	a.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "nocsoc_eventstore_spilled_events", Help: "Unloaded events the loader reads back from the journal's files (the backlog beyond what it holds in memory).",
	}, func() float64 { return float64(ev.SpilledEvents()) }))
	a.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "nocsoc_eventstore_event_files", Help: "Parquet files holding the stored log events.",
	}, func() float64 { n, _ := ev.EventFiles(); return float64(n) }))
	a.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "nocsoc_eventstore_event_file_bytes", Help: "Bytes of the Parquet files holding the stored log events.",
	}, func() float64 { _, b := ev.EventFiles(); return float64(b) }))
	a.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "nocsoc_eventstore_journal_lost_events_total", Help: "Acknowledged events lost because their journal segment was damaged on disk before it was loaded, or their event file when the server started.",
	}, func() float64 { return float64(ev.LostEvents()) }))

	if err := a.bootstrapAdmin(ctx); err != nil {
		return err
	}

	resp, err := response.New(ctx, response.Options{
		Store:  st,
		Logger: a.log,
		Now:    a.opts.Now,
	})
	if err != nil {
		return err
	}
	a.resp = resp
	if err := a.applyAlerting(ctx, cfg); err != nil {
		return err
	}
	a.reg.MustRegister(opmetrics.Collector(func() opmetrics.Report {
		// A rolling 30-day window, computed at scrape time.
		to := time.Now()
		from := to.Add(-30 * 24 * time.Hour)
		incs, err := st.IncidentsForMetrics(context.Background(), from, to)
		if err != nil {
			a.log.Error("operation metrics", "err", err)
			return opmetrics.Report{}
		}
		return opmetrics.Compute(incs, -1, opmetrics.Filter{From: from, To: to})
	}))
	sender := notify.NewSender(notify.SenderOptions{Logger: a.log})
	resp.SetDispatcher(notify.NewDispatcher(notify.DispatcherOptions{Sender: sender, Log: resp, Logger: a.log,
		// Enough workers that a slow receiver does not hold up pages to
		// the others; their delivery records share the intake's commits.
		Workers: 64}))

	// The SOC pipeline: inputs → normalize → event store → detection.
	eng, err := a.compileRules(cfg)
	if err != nil {
		return err
	}
	a.detect = detect.New(detect.Options{Engine: eng, Alerts: autoSink{a: a, next: responseSink{resp}}, Logger: a.log})
	a.soc = soc.New(ev, a.detect, a.log)
	a.soc.SetStoreBatches(func(n int) soc.StoreBatch { return ev.NewEventBatch(n) })
	a.registerPipelineMetrics()
	a.ingest = ingest.NewManager(ingest.Options{
		Sink:      a.soc,
		Batches:   func(n int) ingest.SinkBatch { return a.soc.NewBatch(n) },
		Normalize: normalize.Normalize,
		StateDir:  filepath.Join(cfg.Server.DataDir, "ingest"),
		Logger:    a.log,
	})
	a.reg.MustRegister(a.ingest.Collector())

	svc, err := noc.New(ctx, noc.Options{
		Store:         st,
		Events:        ev,
		Prober:        check.NewProber(check.ProberOptions{Logger: a.log}),
		Workers:       cfg.Server.Workers,
		FlapWindow:    cfg.Server.FlapWindow.D(),
		FlapThreshold: cfg.Server.FlapThreshold,
		Logger:        a.log,
		Metrics:       noc.NewMetrics(a.reg),
		Alerts:        responseSink{resp},
	})
	if err != nil {
		return err
	}
	if err := svc.Apply(ctx, cfg.Checks, cfg.Maintenance); err != nil {
		return fmt.Errorf("apply config: %w", err)
	}
	a.noc = svc
	a.fleet = fleet.New(fleet.Options{Store: st, Metrics: ev, Alerts: responseSink{resp}, Events: a.soc, Logger: a.log, CheckEvery: a.opts.AgentCheckEvery, OnJobResult: a.onJobResult,
		Compliance: fleet.ComplianceOptions{PolicyDir: cfg.Compliance.Policies, NoBuiltin: !cfg.Compliance.BuiltinOn(),
			ServiceLevel: fleet.ServiceLevelSource(st.IncidentsForMetrics, ev.UptimeAll)}})
	a.fleet.LoadPolicies(ctx) // refused policies are logged with file:line (compliance)
	if err := a.applyEndpoints(ctx, cfg); err != nil {
		return err
	}
	// Check alerts on an unresponsive endpoint are its symptoms.
	svc.SetHostRootCauser(a.fleet)
	a.fleet.SetRootCauseSink(svc)
	a.reg.MustRegister(noc.StateCollector{S: svc})

	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Server.Listen, err)
	}
	a.ln = ln
	publicURL := cfg.Server.PublicURL
	if publicURL == "" || a.opts.Listen != "" || strings.HasSuffix(publicURL, ":0") {
		// The address was chosen at start (--listen, or port 0).
		publicURL = a.URL()
	}
	a.resp.SetPublicURL(publicURL)
	if err := a.openAutoResponse(cfg, publicURL); err != nil {
		return err
	}
	decisionPolicy := a.ar.Policy()
	apiH := web.New(web.Options{
		Store:     st,
		NOC:       svc,
		Response:  resp,
		Ingest:    a.soc,
		Normalize: normalize.Normalize,
		Events:    ev,
		Metrics:   promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}),
		Logger:    a.log,
		Version:   Version,
		Fleet:     a.fleet,
		PublicURL: publicURL,
		// Decisions expire on the same injectable clock as incidents.
		DecisionClock:  a.opts.Now,
		DecisionPolicy: &decisionPolicy,
		AutoResponse:   a.ar,
	})
	console, err := ui.New(ui.Options{Store: st, NOC: svc, Events: ev, Response: resp, Logger: a.log, Detector: a.detect, Sender: sender, Secure: cfg.Server.TLSCert != "" || strings.HasPrefix(publicURL, "https://"),
		Fleet: a.fleet, DecisionClock: a.opts.Now, DecisionPolicy: &decisionPolicy, Responder: a.ar})
	if err != nil {
		return fmt.Errorf("web console: %w", err)
	}
	a.ui = console
	mux := http.NewServeMux()
	mux.Handle("/api/", apiH)
	mux.Handle("/v1/", apiH) // the CrowdSec-compatible bouncer API
	mux.Handle("/healthz", apiH)
	mux.Handle("/metrics", apiH)
	mux.Handle("/debug/pprof/", apiH)
	mux.Handle("/", console) // the console owns every other path
	a.handler = mux
	return nil
}

// bootstrapAdmin creates user admin on first start.
func (a *App) bootstrapAdmin(ctx context.Context) error {
	n, err := a.st.CountUsers(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	pw := a.opts.AdminPassword
	generated := pw == ""
	if generated {
		if pw, err = auth.GeneratePassword(); err != nil {
			return err
		}
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		return err
	}
	if _, err := a.st.CreateUser(ctx, store.Actor{Name: "system"}, store.User{Name: "admin", Role: auth.RoleAdmin, PasswordHash: hash, CreatedAt: time.Now().UTC()}); err != nil {
		return fmt.Errorf("create admin user: %w", err)
	}
	if generated {
		fmt.Fprintf(a.opts.Stderr, "nocsoc: created user \"admin\" with password %s\nnocsoc: it is shown only this once; create an API token with: nocsoc token create --data %s --user admin\n", pw, a.server.DataDir)
	} else {
		fmt.Fprintln(a.opts.Stderr, "nocsoc: created user \"admin\" with the password from NOCSOC_ADMIN_PASSWORD")
	}
	return nil
}

// compileRules loads and compiles the detection rules; rules that fail
// are reported and skipped, the others run.
func (a *App) compileRules(c *config.Config) (*sigma.Engine, error) {
	var builtin fs.FS
	if c.Detection.BuiltinOn() {
		builtin = rules.Builtin
	}
	rs, errs := detect.LoadRules(c.Detection.Rules, builtin)
	for _, e := range errs {
		a.log.Warn("detection rule not loaded", "err", e)
	}
	pl := sigma.DefaultPipeline()
	if c.Detection.Pipeline != "" {
		p, err := sigma.LoadPipeline(c.Detection.Pipeline)
		if err != nil {
			return nil, fmt.Errorf("detection.pipeline: %w", err)
		}
		pl = p
	}
	eng, cerrs := sigma.Compile(rs, pl)
	for _, e := range cerrs {
		a.log.Warn("detection rule not compiled", "err", e)
	}
	a.log.Info("detection rules loaded", "rules", len(rs)-len(cerrs), "failed", len(errs)+len(cerrs))
	return eng, nil
}

// applyAlerting installs routing, inhibition, channels, policies and
// schedules, and provisions the runbooks directory. Runbook files that do
// not parse are reported and skipped; the others load.
func (a *App) applyAlerting(ctx context.Context, c *config.Config) error {
	route, err := alert.CompileRoute(c.Alerting.Route)
	if err != nil {
		return fmt.Errorf("alerting.route: %w", err)
	}
	if dir := c.Alerting.RunbooksDir; dir != "" {
		rbs, errs := runbook.LoadDir(dir)
		for _, e := range errs {
			a.log.Error("runbook not loaded", "err", e)
		}
		if err := a.st.SyncProvisionedRunbooks(ctx, rbs); err != nil {
			return fmt.Errorf("runbooks from %s: %w", dir, err)
		}
		if err := a.resp.ReloadDynamic(ctx); err != nil {
			return err
		}
	}
	return a.resp.SetRules(response.Rules{
		Route:     route,
		Inhibit:   c.Alerting.InhibitRules,
		Channels:  c.Alerting.Channels,
		Policies:  c.Alerting.Policies,
		Schedules: c.Alerting.Schedules,
	})
}

// Addr is the address the HTTP server listens on.
func (a *App) Addr() string { return a.ln.Addr().String() }

// URL is the base URL of the HTTP server.
func (a *App) URL() string {
	if a.server.TLSCert != "" {
		return "https://" + a.Addr()
	}
	return "http://" + a.Addr()
}

// DataDir is the data directory in use.
func (a *App) DataDir() string { return a.server.DataDir }

// Store, Events and NOC expose the parts, for tests and subcommands.
func (a *App) Store() *store.Store       { return a.st }
func (a *App) Events() *eventstore.Store { return a.events }
func (a *App) NOC() *noc.Service         { return a.noc }

// Response is the incident workflow service.
func (a *App) Response() *response.Service { return a.resp }
func (a *App) Handler() http.Handler       { return a.handler }

// Reload re-reads the config file. An invalid config is refused with its
// file:line reason and the running config stays in force.
func (a *App) Reload(ctx context.Context) error {
	if a.opts.ConfigPath == "" {
		return errors.New("no config file to reload")
	}
	a.cfgMu.Lock()
	defer a.cfgMu.Unlock()
	c, err := config.LoadFile(a.opts.ConfigPath)
	if err != nil {
		a.log.Error("config reload refused; the running config stays in force", "err", err)
		return err
	}
	if err := a.noc.Apply(ctx, c.Checks, c.Maintenance); err != nil {
		a.log.Error("config reload refused; the running config stays in force", "err", err)
		return err
	}
	if err := a.applyAlerting(ctx, c); err != nil {
		a.log.Error("alerting config reload refused; the previous rules stay in force", "err", err)
		return err
	}
	if err := a.applyEndpoints(ctx, c); err != nil {
		a.log.Error("endpoints config reload refused", "err", err)
		return err
	}
	eng, err := a.compileRules(c)
	if err != nil {
		a.log.Error("detection config reload refused; the previous rules stay in force", "err", err)
		return err
	}
	// The response policy (allow-list, servers, approval, rate limits,
	// repeat, rules) applies now; rate-limit counters carry over.
	if a.ar != nil {
		if err := a.ar.Apply(c.Response); err != nil {
			a.log.Error("response config reload refused; the previous policy stays in force", "err", err)
			return fmt.Errorf("response: %w", err)
		}
	}
	a.detect.SetEngine(eng)
	// Policy files added, changed or removed apply now (compliance.go); a
	// refused file keeps its previous version and does not refuse the
	// reload.
	a.fleet.SetPolicySources(c.Compliance.Policies, !c.Compliance.BuiltinOn())
	a.fleet.ReloadPolicies(ctx)
	// Server settings (listen, data dir) need a restart; checks and
	// windows apply now.
	a.cfg = c
	a.log.Info("config reloaded", "checks", len(c.Checks), "maintenance_windows", len(c.Maintenance))
	return nil
}

// Run serves until ctx ends, then shuts down gracefully: the HTTP server
// stops accepting, in-flight probes are cancelled and awaited, queued
// results are flushed and the stores closed.
func (a *App) Run(ctx context.Context) error {
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		// No write timeout: the console's event stream is long-lived.
		// Handlers bound their own work.
		WriteTimeout: 0,
		IdleTimeout:  120 * time.Second,
		ErrorLog:     slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var err error
		if a.server.TLSCert != "" {
			srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			err = srv.ServeTLS(a.ln, a.server.TLSCert, a.server.TLSKey)
		} else {
			err = srv.Serve(a.ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http server: %w", err)
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := a.noc.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			errc <- fmt.Errorf("noc: %w", err)
		}
	}()
	// The incident service outlives ctx until detection has finished what
	// was queued at shutdown: those alerts must still be raised.
	respCtx, respCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer respCancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := a.resp.Run(respCtx); err != nil && !errors.Is(err, context.Canceled) {
			errc <- fmt.Errorf("incidents: %w", err)
		}
	}()
	a.cfgMu.Lock()
	inputs := a.cfg.Inputs
	a.cfgMu.Unlock()
	if err := a.ingest.Start(runCtx, inputs); err != nil {
		cancel()
		respCancel()
		wg.Wait()
		_ = a.closeStores()
		return fmt.Errorf("inputs: %w", err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.socHousekeeping(runCtx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		// NOC alerts about the SOC pipeline itself (internal/soc/health.go).
		soc.NewHealthWatcher(soc.HealthOptions{Read: a.pipelineHealth, Alerts: responseSink{a.resp},
			Every: a.opts.HealthEvery, For: a.opts.HealthFor, Now: a.opts.Now, Logger: a.log}).Run(runCtx)
	}()
	socDone := make(chan struct{})
	socCtx, socCancel := context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		defer close(socDone)
		a.soc.Run(socCtx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = a.fleet.Run(runCtx) // returns only when runCtx ends
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.ar.Run(runCtx) // decisions → agent firewalls; automatic responses
	}()
	a.runCompliance(runCtx, &wg) // compliance.go: policy directory polling, history retention
	if a.opts.ConfigPath != "" && a.opts.ConfigPoll >= 0 {
		poll := a.opts.ConfigPoll
		if poll == 0 {
			poll = 2 * time.Second
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.cfgMu.Lock()
			loaded := a.cfg
			a.cfgMu.Unlock()
			config.WatchLoaded(runCtx, loaded, poll, func() { _ = a.Reload(runCtx) })
		}()
	}
	a.log.Info("nocsoc serving", "url", a.URL(), "data_dir", a.server.DataDir, "version", Version)
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	a.log.Info("shutting down")
	// Open console event streams would hold Shutdown open.
	a.ui.Close()
	// So would agents' long polls for jobs.
	a.fleet.StopPolls()
	shutCtx, shutCancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer shutCancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		a.log.Warn("http shutdown", "err", err)
	}
	// Inputs stop first and flush what they accepted into the stores;
	// then detection finishes what is queued.
	if err := a.ingest.Stop(); err != nil {
		a.log.Warn("stop inputs", "err", err)
	}
	socCancel()
	<-socDone
	cancel()
	respCancel()
	wg.Wait()
	if err := a.closeStores(); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

// pipelineHealth is the SOC pipeline's state for its health watcher.
func (a *App) pipelineHealth() soc.HealthReading {
	st := a.soc.Stats()
	r := soc.HealthReading{Unloaded: a.events.UnloadedEvents(), MaxBacklog: a.events.MaxBacklog(), Lost: a.events.LostEvents(),
		DetectionLag: st.DetectionLag, DetectionQueued: st.QueuedEvents}
	for _, in := range a.ingest.Stats() {
		r.UDPDrops += in.UDPDrops
	}
	return r
}

// socHousekeeping drives time-based detection (a log source gone silent)
// and event retention.
func (a *App) socHousekeeping(ctx context.Context) {
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	lastRetention := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if err := a.detect.Tick(ctx, now); err != nil && ctx.Err() == nil {
				a.log.Error("detection tick", "err", err)
			}
			if now.Sub(lastRetention) >= time.Hour {
				lastRetention = now
				a.applyRetention(ctx, now)
				if _, err := a.st.DeleteExpiredSessions(ctx, now); err != nil && ctx.Err() == nil {
					a.log.Error("delete expired sessions", "err", err)
				}
			}
		}
	}
}

// applyRetention deletes what the events retention allows, and only
// that; the plan is logged before anything is deleted.
func (a *App) applyRetention(ctx context.Context, now time.Time) {
	a.cfgMu.Lock()
	ev := a.cfg.Events
	a.cfgMu.Unlock()
	plan, err := a.events.PlanRetention(ctx, eventstore.Retention{MaxAge: ev.Retention.D(), MaxBytes: ev.MaxSizeBytes()}, now)
	if err != nil {
		a.log.Error("plan event retention", "err", err)
		return
	}
	if plan.Rows == 0 {
		return
	}
	a.log.Warn("event retention: deleting", "rows", plan.Rows, "before", plan.DeleteBefore, "reason", plan.Reason)
	n, err := a.events.ApplyRetention(ctx, plan)
	if err != nil {
		a.log.Error("apply event retention", "err", err)
		return
	}
	a.log.Info("event retention: deleted", "rows", n)
}

// Ingest exposes the input manager (tests read the bound addresses).
func (a *App) Ingest() *ingest.Manager { return a.ingest }

// Detector exposes the detection engine wrapper.
func (a *App) Detector() *detect.Detector { return a.detect }

func (a *App) closeStores() error {
	var errs []error
	if a.events != nil {
		errs = append(errs, a.events.Close())
		a.events = nil
	}
	if a.st != nil {
		errs = append(errs, a.st.Close())
		a.st = nil
	}
	if a.ln != nil {
		_ = a.ln.Close()
	}
	return errors.Join(errs...)
}

// Close releases everything without running (for a New that is not Run).
func (a *App) Close() error { return a.closeStores() }

// responseSink feeds check alerts into the incident workflow.
type responseSink struct{ r *response.Service }

func (k responseSink) Fire(ctx context.Context, a alert.Alert) error {
	// The incident's times come from the workflow's clock, not the probe's.
	a.StartedAt, a.LastSeenAt = time.Time{}, time.Time{}
	_, err := k.r.Submit(ctx, response.Op{Kind: response.OpFire, Alert: a})
	return err
}

// FireAll fires a batch of alerts (one detection batch) in one Submit:
// one group commit instead of one per alert.
func (k responseSink) FireAll(ctx context.Context, as []alert.Alert) error {
	ops := make([]response.Op, len(as))
	for i, a := range as {
		a.StartedAt, a.LastSeenAt = time.Time{}, time.Time{}
		ops[i] = response.Op{Kind: response.OpFire, Alert: a}
	}
	_, err := k.r.Submit(ctx, ops...)
	return err
}

func (k responseSink) Resolve(ctx context.Context, fp string, at time.Time) error {
	_, err := k.r.Submit(ctx, response.Op{Kind: response.OpResolve, Fingerprint: fp})
	return err
}

// applyEndpoints installs the endpoints section: threshold rules on agent
// metrics and the storage forecast.
func (a *App) applyEndpoints(ctx context.Context, c *config.Config) error {
	rules := make([]fleet.ThresholdRule, len(c.Endpoints.Thresholds))
	for i, r := range c.Endpoints.Thresholds {
		rules[i] = fleet.ThresholdRule{Name: r.Name, Metric: r.Metric, Labels: r.Labels, Op: r.Op, Value: r.Value, For: r.For.D(), Severity: r.Severity}
	}
	if err := a.fleet.SetThresholds(ctx, rules); err != nil {
		return fmt.Errorf("endpoints.thresholds: %w", err)
	}
	f := c.Endpoints.Forecast
	if err := a.fleet.SetForecast(fleet.ForecastOptions{AlertDays: f.AlertDays, MinPoints: f.MinPoints, Severity: f.Severity}); err != nil {
		return fmt.Errorf("endpoints.forecast: %w", err)
	}
	return nil
}

// Active response wiring (internal/autoresponse).

// openAutoResponse builds the active-response service once the public URL
// (whose host, when an IP address, is never blocked and stays reachable
// from isolated hosts) is known.
func (a *App) openAutoResponse(cfg *config.Config, publicURL string) error {
	var servers []netip.Addr
	if u, err := url.Parse(publicURL); err == nil {
		if ip, err := netip.ParseAddr(u.Hostname()); err == nil && !ip.IsUnspecified() {
			servers = append(servers, ip)
		}
	}
	ar, err := autoresponse.New(autoresponse.Options{Store: a.st, Jobs: a.fleet, Config: cfg.Response,
		Policy: decision.DefaultPolicy(servers...), Servers: servers, Logger: a.log, Now: a.opts.Now})
	if err != nil {
		return err
	}
	a.ar = ar
	return nil
}

// AutoResponse returns the active-response service (tests).
func (a *App) AutoResponse() *autoresponse.Service { return a.ar }

// onJobResult hands results of response jobs to the active-response
// service.
func (a *App) onJobResult(ctx context.Context, j store.Job) {
	if a.ar != nil {
		a.ar.OnJobResult(ctx, j)
	}
}

// autoSink sends detection alerts to the incident workflow and then to
// automatic response (set up after the detector, hence the indirection).
type autoSink struct {
	a    *App
	next responseSink
}

func (k autoSink) Fire(ctx context.Context, al alert.Alert) error {
	if k.a.ar == nil {
		return k.next.Fire(ctx, al)
	}
	return k.a.ar.Sink(k.next, k.a.detectRules).Fire(ctx, al)
}

// FireAll hands a detection batch on in one call (detect.BatchAlertSink).
func (k autoSink) FireAll(ctx context.Context, as []alert.Alert) error {
	if k.a.ar == nil {
		return k.next.FireAll(ctx, as)
	}
	return k.a.ar.Sink(k.next, k.a.detectRules).FireAll(ctx, as)
}

var _ detect.BatchAlertSink = autoSink{}

func (a *App) detectRules() []*sigma.Rule {
	if e := a.detect.Engine(); e != nil {
		return e.Rules()
	}
	return nil
}

// registerPipelineMetrics exposes where an event or alert waits between
// acceptance and notification: the detection queue and lag, the incident
// workflow's intake queue and the notification dispatcher.
func (a *App) registerPipelineMetrics() {
	gauge := func(name, help string, f func() float64) {
		a.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	counter := func(name, help string, f func() float64) {
		a.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
	}
	gauge("nocsoc_soc_detection_queue_batches", "Stored event batches waiting for Sigma detection.",
		func() float64 { return float64(a.soc.Stats().Queued) })
	gauge("nocsoc_soc_detection_queue_events", "Stored events waiting for or under Sigma detection (at most soc.DetectionQueue before inputs wait).",
		func() float64 { return float64(a.soc.Stats().QueuedEvents) })
	gauge("nocsoc_soc_detection_lag_seconds", "The last batch's time from stored to evaluated by detection.",
		func() float64 { return a.soc.Stats().DetectionLag.Seconds() })
	counter("nocsoc_soc_detection_errors_total", "Batches whose detection failed.",
		func() float64 { return float64(a.soc.Stats().DetectErrors) })
	gauge("nocsoc_incident_intake_queue", "Alert and delivery operations waiting for the incident workflow.",
		func() float64 { return float64(a.resp.QueueDepth()) })
	gauge("nocsoc_notify_queued", "Notifications waiting for a dispatcher worker.",
		func() float64 { return float64(a.resp.DispatchStats().Queued) })
	gauge("nocsoc_notify_retrying", "Notifications waiting for their retry backoff to end.",
		func() float64 { return float64(a.resp.DispatchStats().Retrying) })
	gauge("nocsoc_notify_in_flight", "Notifications being sent.",
		func() float64 { return float64(a.resp.DispatchStats().InFlight) })
	counter("nocsoc_notify_sent_total", "Notification attempts that succeeded.",
		func() float64 { return float64(a.resp.DispatchStats().Sent) })
	counter("nocsoc_notify_failed_total", "Notification attempts that failed and will be retried.",
		func() float64 { return float64(a.resp.DispatchStats().Failed) })
	counter("nocsoc_notify_dead_total", "Notifications given up after their last attempt.",
		func() float64 { return float64(a.resp.DispatchStats().Dead) })
	counter("nocsoc_notify_dropped_total", "Notifications refused because the dispatcher queue was full.",
		func() float64 { return float64(a.resp.DispatchStats().Dropped) })
}
