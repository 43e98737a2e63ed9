// Package config owns nocsoc's configuration file: it reads strict YAML into
// typed, validated values (server settings, provisioned checks,
// maintenance windows and the alerting section), reports every mistake with its line, prints the
// configuration with secrets redacted and watches the file for changes.
package config

import (
	"crypto/sha256"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/ingest"
	"github.com/nocsoc/nocsoc/internal/maintenance"
)

// Defaults for the server section.
const (
	DefaultListen            = "127.0.0.1:8080"
	DefaultDataDir           = "./nocsoc-data"
	DefaultWorkers           = 256
	DefaultFlapWindow        = 10 * time.Minute
	DefaultFlapThreshold     = 5
	DefaultRetention         = 90 * 24 * time.Hour
	DefaultMemoryLimit       = "384MB"
	DefaultEventStoreThreads = 2
)

// Config is the whole configuration.
type Config struct {
	Server Server `yaml:"server"`
	// Checks are the provisioned checks: Provisioned is set and Normalize
	// has filled in their defaults.
	Checks []check.Spec `yaml:"checks"`
	// Maintenance holds the provisioned maintenance windows (Provisioned set).
	Maintenance []maintenance.Window `yaml:"maintenance"`
	// Alerting holds routing, inhibition, channels, escalation policies,
	// on-call schedules and the runbook directory.
	Alerting Alerting `yaml:"alerting"`
	// Inputs are the log inputs of the SOC pipeline (syslog listeners,
	// tailed files); Detection the Sigma rules; Events the event store.
	Inputs    ingest.Config `yaml:"inputs"`
	Detection Detection     `yaml:"detection"`
	Events    Events        `yaml:"events"`
	// Endpoints holds threshold rules and the storage forecast over what
	// agents report (endpoints.go).
	Endpoints Endpoints `yaml:"endpoints"`
	// Response holds the active-response policy: allow-list, approval,
	// rate limits, automatic responses (response.go).
	Response Response `yaml:"response"`
	// Compliance says where compliance policies come from (compliance.go).
	Compliance Compliance `yaml:"compliance"`
	// Path is the file the configuration was loaded from; "" for Load.
	Path string `yaml:"-"`

	// size and sum fingerprint the loaded file's content for WatchLoaded.
	size int64
	sum  [sha256.Size]byte
}

// Server holds the settings of the server process.
type Server struct {
	// Listen is the HTTP listen address (host:port).
	Listen string `yaml:"listen"`
	// DataDir holds the SQLite and DuckDB files, relative to the working
	// directory unless absolute.
	DataDir string `yaml:"data_dir"`
	// PublicURL is the base of links in notifications; it defaults to
	// http(s)://Listen, with "localhost" when Listen has no host.
	PublicURL string `yaml:"public_url"`
	// Workers is the size of the probe worker pool.
	Workers int `yaml:"workers"`
	// FlapWindow and FlapThreshold: a check that changes state
	// FlapThreshold times within FlapWindow is flapping.
	FlapWindow    check.Duration `yaml:"flap_window"`
	FlapThreshold int            `yaml:"flap_threshold"`
	EventStore    EventStore     `yaml:"eventstore"`
	// Retention is how long check results are kept.
	Retention check.Duration `yaml:"retention"`
	// TLSCert and TLSKey are PEM file paths; set both to serve HTTPS.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
}

// EventStore holds the DuckDB settings, which are always set explicitly
// because DuckDB's own defaults take most of the machine.
type EventStore struct {
	// MemoryLimit is a DuckDB size such as "512MB" or "2GiB".
	MemoryLimit string `yaml:"memory_limit"`
	// CheckpointThreshold is the DuckDB WAL size that starts a
	// checkpoint ("": the event store's default).
	CheckpointThreshold string `yaml:"checkpoint_threshold"`
	Threads             int    `yaml:"threads"`
	// LoadRows is how many journaled events the loader moves into DuckDB
	// in one append (0: the event store's default).
	LoadRows int `yaml:"load_rows"`
	// MaxBacklog is how many acknowledged events may wait for the loader
	// before the inputs are paced (0: the event store's default).
	MaxBacklog int `yaml:"max_backlog"`
	// SearchWait bounds how long a search waits for acknowledged events
	// still waiting for the loader (0: the event store's default).
	SearchWait check.Duration `yaml:"search_wait"`
}

// Default returns the configuration used when there is no file: every
// default, no checks, no windows.
func Default() *Config {
	c := &Config{}
	c.Server.applyDefaults()
	c.Events.applyDefaults()
	c.Endpoints.applyDefaults()
	return c
}

func (s *Server) applyDefaults() {
	if s.Listen == "" {
		s.Listen = DefaultListen
	}
	if s.DataDir == "" {
		s.DataDir = DefaultDataDir
	}
	if s.Workers == 0 {
		s.Workers = DefaultWorkers
	}
	if s.FlapWindow == 0 {
		s.FlapWindow = check.Duration(DefaultFlapWindow)
	}
	if s.FlapThreshold == 0 {
		s.FlapThreshold = DefaultFlapThreshold
	}
	if s.Retention == 0 {
		s.Retention = check.Duration(DefaultRetention)
	}
	if s.EventStore.MemoryLimit == "" {
		s.EventStore.MemoryLimit = DefaultMemoryLimit
	}
	if s.EventStore.Threads == 0 {
		s.EventStore.Threads = DefaultEventStoreThreads
	}
	if s.PublicURL == "" {
		host, port, err := net.SplitHostPort(s.Listen)
		if err == nil {
			// A wildcard listen address is no use in a link.
			if host == "" || host == "0.0.0.0" || host == "::" {
				host = "localhost"
			}
			scheme := "http"
			if s.TLSCert != "" {
				scheme = "https"
			}
			s.PublicURL = scheme + "://" + net.JoinHostPort(host, port)
		}
	}
	s.PublicURL = strings.TrimRight(s.PublicURL, "/")
}

var memoryLimitRE = regexp.MustCompile(`^(?i)\d+(\.\d+)?\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)$`)

// validate checks the server section after defaults; it returns a
// *check.FieldError whose Field is relative to "server".
func (s *Server) validate() error {
	_, port, err := net.SplitHostPort(s.Listen)
	if err != nil {
		return &check.FieldError{Field: "listen", Reason: fmt.Sprintf("%q is not host:port", s.Listen)}
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return &check.FieldError{Field: "listen", Reason: fmt.Sprintf("port %q is not a number from 0 to 65535", port)}
	}
	if s.PublicURL != "" {
		u, err := url.Parse(s.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &check.FieldError{Field: "public_url", Reason: fmt.Sprintf("%q must be an absolute http:// or https:// URL", s.PublicURL)}
		}
	}
	if s.Workers < 0 {
		return &check.FieldError{Field: "workers", Reason: "must not be negative"}
	}
	if s.FlapWindow < 0 {
		return &check.FieldError{Field: "flap_window", Reason: "must not be negative"}
	}
	if s.FlapThreshold < 0 {
		return &check.FieldError{Field: "flap_threshold", Reason: "must not be negative"}
	}
	if s.Retention < 0 {
		return &check.FieldError{Field: "retention", Reason: "must not be negative"}
	}
	if s.Retention.D() < time.Hour {
		return &check.FieldError{Field: "retention", Reason: "must be at least 1h"}
	}
	if !memoryLimitRE.MatchString(strings.TrimSpace(s.EventStore.MemoryLimit)) {
		return &check.FieldError{Field: "eventstore.memory_limit", Reason: fmt.Sprintf("%q must be a size like 512MB or 2GiB", s.EventStore.MemoryLimit)}
	}
	if c := strings.TrimSpace(s.EventStore.CheckpointThreshold); c != "" && !memoryLimitRE.MatchString(c) {
		return &check.FieldError{Field: "eventstore.checkpoint_threshold", Reason: fmt.Sprintf("%q must be a size like 256MB or 1GiB", s.EventStore.CheckpointThreshold)}
	}
	if s.EventStore.Threads < 0 {
		return &check.FieldError{Field: "eventstore.threads", Reason: "must not be negative"}
	}
	if l := s.EventStore.LoadRows; l < 0 || l > 1<<20 {
		return &check.FieldError{Field: "eventstore.load_rows", Reason: "must be between 0 (default) and 1048576"}
	}
	if b := s.EventStore.MaxBacklog; b < 0 || b > 1<<26 {
		return &check.FieldError{Field: "eventstore.max_backlog", Reason: "must be between 0 (default) and 67108864"}
	}
	if w := s.EventStore.SearchWait.D(); w < 0 || w > 10*time.Minute {
		return &check.FieldError{Field: "eventstore.search_wait", Reason: "must be between 0 (default) and 10m"}
	}
	if s.TLSCert != "" && s.TLSKey == "" {
		return &check.FieldError{Field: "tls_cert", Reason: "tls_key must be set as well"}
	}
	if s.TLSKey != "" && s.TLSCert == "" {
		return &check.FieldError{Field: "tls_key", Reason: "tls_cert must be set as well"}
	}
	return nil
}

// validateWindow checks the parts of a window the scheduler cannot do
// without; the maintenance package adds its own rules (cron syntax) through
// a Validate method when it has one.
func validateWindow(w *maintenance.Window) error {
	if strings.TrimSpace(w.Name) == "" {
		return &check.FieldError{Field: "name", Reason: "is required"}
	}
	if w.Duration < 0 {
		return &check.FieldError{Field: "duration", Reason: "must be positive"}
	}
	if w.Duration == 0 {
		return &check.FieldError{Field: "duration", Reason: "is required"}
	}
	if w.Start.IsZero() && w.Schedule == "" {
		return &check.FieldError{Field: "start", Reason: "is required for a one-off window (no schedule)"}
	}
	if len(w.Checks) == 0 && len(w.Labels) == 0 {
		return &check.FieldError{Field: "checks", Reason: "a window needs checks or labels to apply to"}
	}
	if w.TimeZone != "" {
		if _, err := time.LoadLocation(w.TimeZone); err != nil {
			return &check.FieldError{Field: "timezone", Reason: fmt.Sprintf("unknown time zone %q", w.TimeZone)}
		}
	}
	if w.Until != nil && !w.Start.IsZero() && !w.Until.After(w.Start) {
		return &check.FieldError{Field: "until", Reason: "must be after start"}
	}
	if v, ok := any(w).(interface{ Validate() error }); ok {
		return v.Validate()
	}
	return nil
}

// LoadFile reads and parses the file at path; errors name the path.
func LoadFile(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Load(path, string(b))
	if err != nil {
		return nil, err
	}
	c.Path = path
	c.size, c.sum = int64(len(b)), sha256.Sum256(b)
	return c, nil
}

// Load parses src; name is the file name used in error messages. Unknown
// keys, duplicate keys, wrong types, invalid values, duplicate check names,
// unknown dependencies and dependency cycles are errors of the form
// "name:line: field: reason". All problems found are returned together as
// Errors, in line order.
func Load(name, src string) (*Config, error) {
	d := &decoder{file: name}
	root, perr := d.parse(src)
	if perr != nil {
		return nil, Errors{perr}
	}
	c := Default()
	if root == nil {
		return c, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, Errors{d.errf(root.Line, "", "the top level must be a mapping with server, checks and maintenance, got %s", describe(root))}
	}
	if err := d.checkKeys(root, ""); err != nil {
		return nil, Errors{err}
	}

	var errs Errors
	var checkNodes, windowNodes []*yaml.Node
	fields := yamlFields(reflect.TypeFor[Config]())
	for _, p := range pairs(root) {
		key := p.key.Value
		if _, ok := fields[key]; !ok {
			errs = append(errs, d.unknownField(p.key, "", reflect.TypeFor[Config](), fields))
			continue
		}
		switch key {
		case "server":
			var s Server
			if err := d.decode(p.val, reflect.ValueOf(&s).Elem(), "server", p.key.Line); err != nil {
				errs = append(errs, err)
				continue
			}
			s.applyDefaults()
			if err := s.validate(); err != nil {
				errs = append(errs, d.fieldError(err, p.val, "server", p.key.Line))
				continue
			}
			c.Server = s
		case "checks":
			checkNodes, errs = d.list(p, errs)
		case "maintenance":
			windowNodes, errs = d.list(p, errs)
		case "inputs":
			var in ingest.Config
			if err := d.decode(p.val, reflect.ValueOf(&in).Elem(), "inputs", p.key.Line); err != nil {
				errs = append(errs, err)
				continue
			}
			if err := in.Validate(); err != nil {
				errs = append(errs, d.fieldError(err, p.val, "inputs", p.key.Line))
				continue
			}
			c.Inputs = in
		case "detection":
			var det Detection
			if err := d.decode(p.val, reflect.ValueOf(&det).Elem(), "detection", p.key.Line); err != nil {
				errs = append(errs, err)
				continue
			}
			if err := det.validate(); err != nil {
				errs = append(errs, d.fieldError(err, p.val, "detection", p.key.Line))
				continue
			}
			c.Detection = det
		case "events":
			var ev Events
			if err := d.decode(p.val, reflect.ValueOf(&ev).Elem(), "events", p.key.Line); err != nil {
				errs = append(errs, err)
				continue
			}
			if err := ev.validate(); err != nil {
				errs = append(errs, d.fieldError(err, p.val, "events", p.key.Line))
				continue
			}
			ev.applyDefaults()
			c.Events = ev
		case "endpoints":
			var ep Endpoints
			if err := d.decode(p.val, reflect.ValueOf(&ep).Elem(), "endpoints", p.key.Line); err != nil {
				errs = append(errs, err)
				continue
			}
			verrs := ep.validate()
			for _, err := range verrs {
				errs = append(errs, d.fieldError(err, p.val, "endpoints", p.key.Line))
			}
			if len(verrs) == 0 {
				ep.applyDefaults()
				c.Endpoints = ep
			}
		case "compliance":
			var cp Compliance
			if err := d.decode(p.val, reflect.ValueOf(&cp).Elem(), "compliance", p.key.Line); err != nil {
				errs = append(errs, err)
				continue
			}
			if verrs := cp.validate(); len(verrs) > 0 {
				for _, err := range verrs {
					errs = append(errs, d.fieldError(err, p.val, "compliance", p.key.Line))
				}
				continue
			}
			c.Compliance = cp
		case "response":
			var rs Response
			if err := d.decode(p.val, reflect.ValueOf(&rs).Elem(), "response", p.key.Line); err != nil {
				errs = append(errs, err)
				continue
			}
			verrs := rs.validate()
			for _, err := range verrs {
				errs = append(errs, d.fieldError(err, p.val, "response", p.key.Line))
			}
			if len(verrs) == 0 {
				c.Response = rs
			}
		case "alerting":
			var a Alerting
			if err := d.decode(p.val, reflect.ValueOf(&a).Elem(), "alerting", p.key.Line); err != nil {
				errs = append(errs, err)
				continue
			}
			verrs := a.validate()
			for _, err := range verrs {
				errs = append(errs, d.fieldError(err, p.val, "alerting", p.key.Line))
			}
			if len(verrs) == 0 {
				c.Alerting = a
			}
		}
	}

	c.Checks, errs = d.checks(checkNodes, errs)
	c.Maintenance, errs = d.windows(windowNodes, errs)
	if len(errs) > 0 {
		return nil, errs.sorted()
	}
	return c, nil
}

// list returns the items of a top-level list.
func (d *decoder) list(p pair, errs Errors) ([]*yaml.Node, Errors) {
	n := resolve(p.val)
	if isNull(n) {
		return nil, errs
	}
	if n.Kind != yaml.SequenceNode {
		return nil, append(errs, d.errf(p.key.Line, p.key.Value, "must be a list, got %s", describe(n)))
	}
	return n.Content, errs
}

// fieldError places a validation error (a *check.FieldError relative to
// the item at n) on the line of the offending field.
func (d *decoder) fieldError(err error, n *yaml.Node, path string, fallback int) *Error {
	if fe, ok := err.(*check.FieldError); ok {
		line := lineOf(n, fe.Field)
		if line == 0 {
			line = fallback
		}
		return d.errf(line, joinPath(path, fe.Field), "%s", fe.Reason)
	}
	return d.errf(resolve(n).Line, path, "%s", err.Error())
}

func (d *decoder) checks(nodes []*yaml.Node, errs Errors) ([]check.Spec, Errors) {
	specs := make([]check.Spec, 0, len(nodes))
	firstLine := map[string]int{}
	bad := false
	for i, n := range nodes {
		path := fmt.Sprintf("checks[%d]", i)
		var s check.Spec
		if err := d.decode(n, reflect.ValueOf(&s).Elem(), path, n.Line); err != nil {
			errs, bad = append(errs, err), true
			continue
		}
		if err := s.Validate(); err != nil {
			errs, bad = append(errs, d.fieldError(err, n, path, n.Line)), true
			continue
		}
		if l, dup := firstLine[s.Name]; dup {
			errs, bad = append(errs, d.errf(lineOf(n, "name"), path+".name", "duplicate check name %q (first defined at line %d)", s.Name, l)), true
			continue
		}
		firstLine[s.Name] = lineOf(n, "name")
		s.Normalize()
		s.Provisioned = true
		specs = append(specs, s)
	}
	// Dependencies are only meaningful once every check read cleanly.
	if bad {
		return nil, errs
	}
	if name, err := check.ValidateSet(specs); err != nil {
		for i := range specs {
			if specs[i].Name == name {
				return nil, append(errs, d.fieldError(err, nodes[i], fmt.Sprintf("checks[%d]", i), nodes[i].Line))
			}
		}
		return nil, append(errs, d.errf(0, "checks", "%s", err.Error()))
	}
	if len(specs) == 0 {
		return nil, errs
	}
	return specs, errs
}

func (d *decoder) windows(nodes []*yaml.Node, errs Errors) ([]maintenance.Window, Errors) {
	var out []maintenance.Window
	firstLine := map[string]int{}
	for i, n := range nodes {
		path := fmt.Sprintf("maintenance[%d]", i)
		var w maintenance.Window
		if err := d.decode(n, reflect.ValueOf(&w).Elem(), path, n.Line); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := validateWindow(&w); err != nil {
			errs = append(errs, d.fieldError(err, n, path, n.Line))
			continue
		}
		if l, dup := firstLine[w.Name]; dup {
			errs = append(errs, d.errf(lineOf(n, "name"), path+".name", "duplicate window name %q (first defined at line %d)", w.Name, l))
			continue
		}
		firstLine[w.Name] = lineOf(n, "name")
		w.Provisioned = true
		out = append(out, w)
	}
	return out, errs
}
