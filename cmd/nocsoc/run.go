package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/nocsoc/nocsoc/internal/app"
	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/config"
	"github.com/nocsoc/nocsoc/internal/demo"
	"github.com/nocsoc/nocsoc/internal/loadgen"
	"github.com/nocsoc/nocsoc/internal/store"
)

const usage = `nocsoc — a Network and Security Operations Center in one binary

Usage:
  nocsoc serve [--config FILE] [--data DIR] [--listen ADDR]
  nocsoc serve --demo [--data DIR] [--listen ADDR]   (simulated services and attacks on loopback)
  nocsoc check run --config FILE NAME
  nocsoc token create --data DIR --user NAME [--name LABEL] [--expires DURATION]
  nocsoc user create --data DIR --name NAME --role admin|operator|viewer   (password from NOCSOC_PASSWORD)
  nocsoc loadgen targets|checks-config|probes|blackbox|alerts|receiver|syslog|agents …   (benchmarks; see 'nocsoc loadgen help')
  nocsoc incident list|show ID|ack ID|resolve ID [--server URL] [--token T]   (NOCSOC_SERVER, NOCSOC_TOKEN)
  nocsoc agent --server URL [--enroll-token TOKEN] [--state DIR] [--interval 30s]   (endpoint agent; see docs/agent.md)
  nocsoc rules check PATH…
  nocsoc rules test --rules PATH… --events FILE
  nocsoc audit verify --data DIR   (check the audit log's hash chain)
  nocsoc version
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[1] {
	case "serve":
		err = serve(args[2:], stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "nocsoc", app.Version)
	case "check":
		err = checkCmd(args[2:], stdout)
	case "token":
		err = tokenCmd(args[2:], stdout)
	case "user":
		err = userCmd(args[2:], stdout)
	case "incident":
		err = incidentCmd(args[2:], stdout)
	case "rules":
		err = rulesCmd(args[2:], stdout, stderr)
	case "audit":
		err = auditCmd(args[2:], stdout)
	case "agent":
		err = agentCmd(args[2:], stderr)
	case "loadgen":
		err = loadgenCmd(args[2:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "nocsoc: unknown command %q\n\n%s", args[1], usage)
		return 2
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "nocsoc: %v\n\n%s", err, usage)
			return 2
		}
		fmt.Fprintf(stderr, "nocsoc: %v\n", err)
		return 1
	}
	return 0
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return usageError{fmt.Sprintf("%s: %v", fs.Name(), err)}
	}
	return nil
}

func serve(args []string, stderr io.Writer) error {
	fs := newFlags("serve")
	cfgPath := fs.String("config", "", "config file (YAML)")
	data := fs.String("data", "", "data directory (default ./nocsoc-data)")
	listen := fs.String("listen", "", "listen address (default 127.0.0.1:8080)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	demoMode := fs.Bool("demo", false, "run with simulated services, logs and attacks on loopback (see docs/demo.md)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *demoMode && *cfgPath != "" {
		return usageError{"serve: --demo generates its own configuration; drop --config (or drop --demo to use your file)"}
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		return usageError{fmt.Sprintf("--log-level: %v", err)}
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	tuneRuntime()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var dm *demo.Demo
	if *demoMode {
		d, cleanup, err := startDemo(ctx, logger, data, cfgPath)
		if err != nil {
			return err
		}
		defer cleanup()
		dm = d
	}
	a, err := app.New(ctx, app.Options{
		ConfigPath:    *cfgPath,
		DataDir:       *data,
		Listen:        *listen,
		Logger:        logger,
		Stderr:        stderr,
		AdminPassword: os.Getenv("NOCSOC_ADMIN_PASSWORD"),
	})
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				logger.Info("SIGHUP: reloading config")
				_ = a.Reload(ctx)
			}
		}
	}()
	if dm != nil {
		printDemoBanner(stderr, a.URL(), a.DataDir())
		go func() {
			if err := dm.Drive(ctx, a); err != nil && ctx.Err() == nil {
				logger.Error("demo driver stopped", "err", err)
			}
		}()
	}
	return a.Run(ctx)
}

// serveGCPercent is the server's GOGC unless the environment sets one.
// Since log events stopped going through DuckDB's append the server's
// resident memory at full load is about a third of its 1 GB budget, and
// collecting half as often bought 7-10 % more events a second for about
// 120 MB (docs/BENCHMARKS.md). serveMemoryLimit (GOMEMLIMIT's default
// here) makes the collector work harder again before the Go heap nears
// that budget.
//
// serveExtraProcs is how many more Ps than CPUs the server runs with
// unless GOMAXPROCS is set. The pipeline fsyncs its journal, event files
// and alert store a few hundred times a second, a few milliseconds each,
// and a goroutine in fsync keeps its P until the runtime's monitor takes
// it back, which under this load is often only after the call returned:
// on 2 CPUs a sixth of the machine sat idle or in I/O wait while the
// run queues were full. One spare P lets the other CPU work meanwhile:
// 1.6 → 1.7 cores used, 8-12 % more events a second, idle + I/O wait
// 14 % → 5 % (docs/BENCHMARKS.md).
const (
	serveGCPercent   = 200
	serveMemoryLimit = 768 << 20
	serveExtraProcs  = 1
)

// tuneRuntime applies the server's GC and scheduler settings, each only
// where the environment does not set its own.
func tuneRuntime() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(serveMemoryLimit)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + serveExtraProcs)
	}
}

// startDemo starts the demo's simulated services, writes its config to a
// temporary file and points *cfgPath at it; without --data it also makes
// a temporary data directory. cleanup stops the services and removes what
// was created.
func startDemo(ctx context.Context, logger *slog.Logger, data, cfgPath *string) (*demo.Demo, func(), error) {
	var remove []string
	cleanup := func() {
		for _, p := range remove {
			_ = os.RemoveAll(p)
		}
	}
	if *data == "" {
		dir, err := os.MkdirTemp("", "nocsoc-demo-data-")
		if err != nil {
			return nil, nil, fmt.Errorf("demo: data directory: %w", err)
		}
		remove = append(remove, dir)
		*data = dir
	}
	d, err := demo.Start(ctx, logger)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	cfgDir, err := os.MkdirTemp("", "nocsoc-demo-config-")
	if err != nil {
		d.Close()
		cleanup()
		return nil, nil, fmt.Errorf("demo: config directory: %w", err)
	}
	remove = append(remove, cfgDir)
	*cfgPath = filepath.Join(cfgDir, "nocsoc-demo.yaml")
	if err := os.WriteFile(*cfgPath, []byte(d.Config()), 0o600); err != nil {
		d.Close()
		cleanup()
		return nil, nil, fmt.Errorf("demo: write config: %w", err)
	}
	return d, func() { d.Close(); cleanup() }, nil
}

func printDemoBanner(w io.Writer, url, dataDir string) {
	pw := "the password printed above"
	if os.Getenv("NOCSOC_ADMIN_PASSWORD") != "" {
		pw = "the password in NOCSOC_ADMIN_PASSWORD"
	}
	fmt.Fprintf(w, `
nocsoc demo is running — open %s
  sign in as admin with %s
  data: %s (removed on exit unless you passed --data)
What to look at in the first minute or two:
  - Checks: most services up; flaky-cache flapping; billing-cert down (certificate expires in 10 days);
    shop-web-staging in maintenance; after ~30s postgres goes down for 2 minutes and shop-api and
    payments turn unreachable (root cause: postgres). It repeats every 6 minutes.
  - Incidents: NOC incidents from checks, SOC incidents from SSH brute force, password spraying and a
    web scan (203.0.113.x / 198.51.100.x are documentation addresses: nothing is sent to them).
    User "demo" acknowledges one, hands one from the NOC to the SOC, resolves one with a postmortem.
  - Deliveries: notifications go to a loopback webhook receiver run by the demo.
Stop with Ctrl-C.

`, url, pw, dataDir)
}

// loadgenCmd runs the benchmark load generators until done or interrupted.
func loadgenCmd(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := loadgen.Run(ctx, args, stdout, stderr)
	var ue loadgen.UsageError
	if errors.As(err, &ue) {
		fmt.Fprint(stderr, loadgen.Usage)
	}
	return err
}

func checkCmd(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "run" {
		return usageError{"check: expected 'check run --config FILE NAME'"}
	}
	fs := newFlags("check run")
	cfgPath := fs.String("config", "", "config file (YAML)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *cfgPath == "" || fs.NArg() != 1 {
		return usageError{"check run: needs --config FILE and one check NAME"}
	}
	cfg, err := config.LoadFile(*cfgPath)
	if err != nil {
		return err
	}
	name := fs.Arg(0)
	for _, c := range cfg.Checks {
		if c.Name != name {
			continue
		}
		if c.Type == check.TypePush {
			return fmt.Errorf("check %q is a push check: it is fed by heartbeats, not probed", name)
		}
		p := check.NewProber(check.ProberOptions{})
		r := p.Probe(context.Background(), c)
		out := map[string]any{"check": r.Check, "type": c.Type, "target": c.Target, "time": r.Time.UTC().Format(time.RFC3339Nano),
			"ok": r.OK, "duration_ms": float64(r.Duration.Microseconds()) / 1000}
		if r.Error != "" {
			out["error"] = r.Error
		}
		if r.StatusCode != 0 {
			out["status_code"] = r.StatusCode
		}
		if r.Detail != "" {
			out["detail"] = r.Detail
		}
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintln(stdout, string(b))
		if !r.OK {
			return fmt.Errorf("check %q failed: %s", name, r.Error)
		}
		return nil
	}
	return fmt.Errorf("%s: no check named %q", *cfgPath, name)
}

func openStore(data string) (*store.Store, error) {
	path := filepath.Join(data, "state.db")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no nocsoc data in %s (start the server once with --data %s): %w", data, data, err)
	}
	return store.Open(context.Background(), path, slog.New(slog.DiscardHandler))
}

func tokenCmd(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return usageError{"token: expected 'token create --data DIR --user NAME'"}
	}
	fs := newFlags("token create")
	data := fs.String("data", "./nocsoc-data", "data directory")
	user := fs.String("user", "", "user the token acts as")
	name := fs.String("name", "cli", "label of the token")
	expires := fs.Duration("expires", 0, "lifetime, e.g. 720h (default: no expiry)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *user == "" {
		return usageError{"token create: --user is required"}
	}
	st, err := openStore(*data)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	u, err := st.UserByName(ctx, *user)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("user %q does not exist", *user)
	} else if err != nil {
		return err
	}
	plain, hash, err := auth.NewToken()
	if err != nil {
		return err
	}
	t := store.Token{UserID: u.ID, Name: *name, Hash: hash, Prefix: plain[:8], CreatedAt: time.Now().UTC()}
	if *expires > 0 {
		e := time.Now().Add(*expires).UTC()
		t.ExpiresAt = &e
	}
	if _, err := st.CreateToken(ctx, store.Actor{Name: "cli:" + osUser()}, t); err != nil {
		return err
	}
	fmt.Fprintln(stdout, plain)
	return nil
}

func userCmd(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return usageError{"user: expected 'user create --data DIR --name NAME --role ROLE'"}
	}
	fs := newFlags("user create")
	data := fs.String("data", "./nocsoc-data", "data directory")
	name := fs.String("name", "", "user name")
	role := fs.String("role", auth.RoleViewer, "admin, operator or viewer")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *name == "" {
		return usageError{"user create: --name is required"}
	}
	if !auth.ValidRole(*role) {
		return fmt.Errorf("unknown role %q", *role)
	}
	pw := os.Getenv("NOCSOC_PASSWORD")
	generated := pw == ""
	if generated {
		var err error
		if pw, err = auth.GeneratePassword(); err != nil {
			return err
		}
	} else if len(pw) < 12 {
		return errors.New("NOCSOC_PASSWORD must be at least 12 characters")
	}
	st, err := openStore(*data)
	if err != nil {
		return err
	}
	defer st.Close()
	hash, err := auth.HashPassword(pw)
	if err != nil {
		return err
	}
	if _, err := st.CreateUser(context.Background(), store.Actor{Name: "cli:" + osUser()}, store.User{Name: *name, Role: *role, PasswordHash: hash, CreatedAt: time.Now().UTC()}); err != nil {
		return err
	}
	if generated {
		fmt.Fprintf(stdout, "created user %q (%s) with password %s\n", *name, *role, pw)
	} else {
		fmt.Fprintf(stdout, "created user %q (%s)\n", *name, *role)
	}
	return nil
}

func osUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return fmt.Sprint(os.Getuid())
}
