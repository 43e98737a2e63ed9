// Package demo owns `nocsoc serve --demo`: simulated services on loopback
// (healthy, flaky, failing, in maintenance, a database that goes down and
// takes its children with it), a generated configuration that watches them,
// and a driver that feeds the SOC with realistic syslog traffic and attacks
// and moves a few incidents through the workflow, so that a newcomer sees a
// living NOC and SOC within a minute.
//
// Nothing the demo does leaves the loopback interface: the attacker
// addresses in its log lines are documentation ranges (RFC 5737) that only
// ever appear as text.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nocsoc/nocsoc/internal/app"
)

// SyslogInput is the name of the demo's TCP syslog input in the generated
// config; its bound address is app.Ingest().Addrs()[SyslogInput].
const SyslogInput = "demo-syslog"

// OperatorName is the user the demo acts as when it works incidents.
const OperatorName = "demo"

// Options tunes a demo. The zero value is the interactive demo.
type Options struct {
	// Logger receives the demo's own log lines; nil discards them.
	Logger *slog.Logger
	// Tick is the demo's unit of time: check intervals, the database
	// outage cycle, attack cadence and the operator's pace are multiples
	// of it. Default 1s; tests use ~100ms. Check intervals never go below
	// 1s, the smallest the config accepts.
	Tick time.Duration
	// RunbooksDir is the runbooks directory named in the config. Empty
	// means ./runbooks when it exists in the working directory (a
	// checkout of the repository), else none.
	RunbooksDir string
	// Now is the clock used for the generated timestamps (certificate
	// validity, the maintenance window); nil means time.Now.
	Now func() time.Time
}

// Demo is a running set of simulated services and its generated config.
type Demo struct {
	opts Options
	log  *slog.Logger

	pushToken     string
	webhookSecret string
	config        string

	svc  *services
	hook *receiver

	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
}

// Start starts the interactive demo's services with the default options.
func Start(ctx context.Context, logger *slog.Logger) (*Demo, error) {
	return StartWith(ctx, Options{Logger: logger})
}

// StartWith starts the simulated services on 127.0.0.1 random ports and
// builds the config that watches them. The services run until Close or
// until ctx ends.
func StartWith(ctx context.Context, o Options) (*Demo, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RunbooksDir == "" {
		o.RunbooksDir = detectRunbooks()
	}
	d := &Demo{opts: o, log: o.Logger.With("component", "demo")}
	var err error
	if d.pushToken, err = randomHex(16); err != nil {
		return nil, err
	}
	if d.webhookSecret, err = randomHex(16); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	d.cancel = cancel
	if d.hook, err = startReceiver(d.log); err != nil {
		cancel()
		return nil, err
	}
	if d.svc, err = startServices(runCtx, o.Tick, o.Now(), d.log, &d.wg); err != nil {
		cancel()
		d.hook.close()
		return nil, err
	}
	d.config = buildConfig(configParams{
		Tick:          o.Tick,
		Now:           o.Now(),
		Addrs:         d.svc.addrs,
		PushToken:     d.pushToken,
		WebhookURL:    "http://" + d.hook.addr + "/hooks",
		WebhookSecret: d.webhookSecret,
		RunbooksDir:   o.RunbooksDir,
	})
	return d, nil
}

// Config is the generated nocsoc configuration (YAML) that watches the
// demo's services, turns on its syslog input and sets up alerting.
func (d *Demo) Config() string { return d.config }

// Deliveries is how many notifications the demo's webhook receiver has
// accepted.
func (d *Demo) Deliveries() int64 { return d.hook.count.Load() }

// PostgresUp reports whether the simulated database is accepting
// connections right now.
func (d *Demo) PostgresUp() bool { return d.svc.pg.isUp() }

// Drive runs everything that needs the server: it waits for the syslog
// input to be bound, then sends SOC traffic (Run), feeds the push check's
// heartbeat and works a few incidents as user "demo". It returns when ctx
// ends or the syslog input never comes up.
func (d *Demo) Drive(ctx context.Context, a *app.App) error {
	addr, err := waitSyslog(ctx, a)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	for _, f := range []func(context.Context) error{
		func(ctx context.Context) error { return d.Run(ctx, addr) },
		func(ctx context.Context) error { return d.heartbeats(ctx, a.URL()) },
		func(ctx context.Context) error { return d.operate(ctx, a) },
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- err
			}
		}()
	}
	wg.Wait()
	close(errc)
	return errors.Join(collect(errc)...)
}

// Close stops every simulated service. It is safe to call more than once.
func (d *Demo) Close() error {
	d.closeOnce.Do(func() {
		d.cancel()
		d.svc.close()
		d.hook.close()
		d.wg.Wait()
	})
	return nil
}

// waitSyslog polls until the server has bound the demo's syslog input:
// inputs start inside app.Run, after the caller launched it.
func waitSyslog(ctx context.Context, a *app.App) (string, error) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if addr := a.Ingest().Addrs()[SyslogInput]; addr != nil {
			return addr.String(), nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("demo: syslog input %q was not bound within 30s", SyslogInput)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-t.C:
		}
	}
}

// sleep waits n ticks; false when ctx ended first.
func (d *Demo) sleep(ctx context.Context, n float64) bool {
	t := time.NewTimer(time.Duration(n * float64(d.opts.Tick)))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func detectRunbooks() string {
	fi, err := os.Stat("runbooks")
	if err != nil || !fi.IsDir() {
		return ""
	}
	abs, err := filepath.Abs("runbooks")
	if err != nil {
		return ""
	}
	return abs
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("demo: random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func collect(c <-chan error) []error {
	var out []error
	for e := range c {
		out = append(out, e)
	}
	return out
}

// listenLoopback binds a random loopback port.
func listenLoopback() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo: listen: %w", err)
	}
	return ln, nil
}

// newServer is an http.Server with sane timeouts whose error log goes to
// the demo's logger rather than the global one.
func newServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       30 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}
