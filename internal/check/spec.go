// Package check owns the NOC's active checks: their definitions, the probes
// that run them against real services, and the scheduler that runs them on
// time with a bounded worker pool.
package check

import (
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Check types.
const (
	TypeHTTP = "http"
	TypeTCP  = "tcp"
	TypeICMP = "icmp"
	TypeDNS  = "dns"
	TypeTLS  = "tls"
	TypeSMTP = "smtp"
	TypePush = "push"
	// TypeMailPosture checks a domain's MX, SPF, DMARC and DKIM records
	// (probe_mail.go).
	TypeMailPosture = "mail_posture"
)

// Types lists every supported check type.
var Types = []string{TypeHTTP, TypeTCP, TypeICMP, TypeDNS, TypeTLS, TypeSMTP, TypePush, TypeMailPosture}

// Severities lists the accepted severities, most severe first.
var Severities = []string{"critical", "high", "medium", "low", "info"}

// Duration is a time.Duration that reads and writes as a Go duration string
// ("30s", "5m") in both YAML and JSON.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON accepts a duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err2 := json.Unmarshal(b, &secs); err2 != nil {
			return fmt.Errorf("duration must be a string like \"30s\" or a number of seconds")
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// UnmarshalYAML accepts a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("invalid duration %q", n.Value)
	}
	*d = Duration(v)
	return nil
}

// Spec defines one check. The same struct is read from the YAML config
// (provisioned checks) and from the JSON API (checks created at run time).
type Spec struct {
	Name string `yaml:"name" json:"name"`
	Type string `yaml:"type" json:"type"`
	// Target is what the probe reaches: a URL for http, host:port for tcp,
	// tls and smtp, a host for icmp, a DNS name for dns; unused by push.
	Target   string            `yaml:"target" json:"target,omitempty"`
	Interval Duration          `yaml:"interval" json:"interval"`
	Timeout  Duration          `yaml:"timeout" json:"timeout"`
	Labels   map[string]string `yaml:"labels" json:"labels,omitempty"`
	Severity string            `yaml:"severity" json:"severity"`
	// DependsOn names parent checks: while a parent is down, this check's
	// failures are attributed to it (state unreachable, no alert).
	DependsOn []string `yaml:"depends_on" json:"depends_on,omitempty"`
	// FailThreshold is the number of consecutive failures before the check
	// goes down; SuccessThreshold the consecutive successes to come back up.
	FailThreshold    int  `yaml:"fail_threshold" json:"fail_threshold"`
	SuccessThreshold int  `yaml:"success_threshold" json:"success_threshold"`
	Disabled         bool `yaml:"disabled" json:"disabled,omitempty"`

	HTTP *HTTPSpec `yaml:"http" json:"http,omitempty"`
	TCP  *TCPSpec  `yaml:"tcp" json:"tcp,omitempty"`
	DNS  *DNSSpec  `yaml:"dns" json:"dns,omitempty"`
	TLS  *TLSSpec  `yaml:"tls" json:"tls,omitempty"`
	SMTP *SMTPSpec `yaml:"smtp" json:"smtp,omitempty"`
	Push *PushSpec `yaml:"push" json:"push,omitempty"`
	// MailPosture holds the options of a mail_posture check (probe_mail.go).
	MailPosture *MailPostureSpec `yaml:"mail_posture" json:"mail_posture,omitempty"`

	// Provisioned is true for checks from the config file; the API refuses
	// to change them.
	Provisioned bool `yaml:"-" json:"provisioned"`
}

// HTTPSpec holds the options of an http check.
type HTTPSpec struct {
	Method  string            `yaml:"method" json:"method,omitempty"`
	Headers map[string]string `yaml:"headers" json:"headers,omitempty"`
	Body    string            `yaml:"body" json:"body,omitempty"`
	// ExpectStatus lists accepted status codes; empty means 200-399.
	ExpectStatus []int  `yaml:"expect_status" json:"expect_status,omitempty"`
	BodyContains string `yaml:"body_contains" json:"body_contains,omitempty"`
	BodyRegex    string `yaml:"body_regex" json:"body_regex,omitempty"`
	// JSON lists JSON-path equality assertions on the response body.
	JSON       []JSONAssert `yaml:"json" json:"json,omitempty"`
	MaxLatency Duration     `yaml:"max_latency" json:"max_latency,omitempty"`
	// TLSVerify defaults to true; set false for self-signed targets.
	TLSVerify *bool `yaml:"tls_verify" json:"tls_verify,omitempty"`
	// FollowRedirects defaults to true; MaxRedirects defaults to 10.
	FollowRedirects *bool `yaml:"follow_redirects" json:"follow_redirects,omitempty"`
	MaxRedirects    int   `yaml:"max_redirects" json:"max_redirects,omitempty"`
}

// JSONAssert checks that the value at Path (dotted, with [i] indexes and an
// optional leading "$.", e.g. "$.items[0].status") equals Equals, compared as
// the JSON value's text form ("ok", "42", "true", "null").
type JSONAssert struct {
	Path   string `yaml:"path" json:"path"`
	Equals string `yaml:"equals" json:"equals"`
}

// TCPSpec holds the options of a tcp check.
type TCPSpec struct {
	Send   string `yaml:"send" json:"send,omitempty"`
	Expect string `yaml:"expect" json:"expect,omitempty"`
}

// DNSSpec holds the options of a dns check.
type DNSSpec struct {
	// Resolver is host:port of the server to ask; empty means the system's
	// first resolver from /etc/resolv.conf.
	Resolver   string   `yaml:"resolver" json:"resolver,omitempty"`
	RecordType string   `yaml:"record_type" json:"record_type,omitempty"`
	Expect     []string `yaml:"expect" json:"expect,omitempty"`
}

// TLSSpec holds the options of a tls check.
type TLSSpec struct {
	// ExpiryDays fails the check when the leaf certificate expires within
	// this many days (default 14).
	ExpiryDays int `yaml:"expiry_days" json:"expiry_days,omitempty"`
	// ServerName overrides the name verified (default: the target's host).
	ServerName string `yaml:"server_name" json:"server_name,omitempty"`
	// Verify defaults to true: chain and hostname verification.
	Verify *bool `yaml:"verify" json:"verify,omitempty"`
}

// SMTPSpec holds the options of an smtp check.
type SMTPSpec struct {
	ExpectBanner string `yaml:"expect_banner" json:"expect_banner,omitempty"`
	EHLO         string `yaml:"ehlo" json:"ehlo,omitempty"`
	StartTLS     bool   `yaml:"starttls" json:"starttls,omitempty"`
	ExpiryDays   int    `yaml:"expiry_days" json:"expiry_days,omitempty"`
	TLSVerify    *bool  `yaml:"tls_verify" json:"tls_verify,omitempty"`
}

// PushSpec holds the options of a push (heartbeat) check: the check goes
// down when no successful heartbeat arrives within Interval + Grace.
type PushSpec struct {
	Grace Duration `yaml:"grace" json:"grace,omitempty"`
	// Token is the secret in the heartbeat URL. Empty means one is generated.
	Token string `yaml:"token" json:"-"`
}

// Defaults applied by Normalize.
const (
	DefaultInterval         = 60 * time.Second
	DefaultTimeout          = 10 * time.Second
	DefaultFailThreshold    = 1
	DefaultSuccessThreshold = 1
	DefaultSeverity         = "high"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// FieldError names the field that is wrong and why.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Normalize fills in defaults. It does not validate.
func (s *Spec) Normalize() {
	if s.Interval == 0 {
		s.Interval = Duration(DefaultInterval)
	}
	if s.Timeout == 0 {
		s.Timeout = Duration(DefaultTimeout)
		if s.Timeout > s.Interval && s.Type != TypePush {
			s.Timeout = s.Interval
		}
	}
	if s.FailThreshold == 0 {
		s.FailThreshold = DefaultFailThreshold
	}
	if s.SuccessThreshold == 0 {
		s.SuccessThreshold = DefaultSuccessThreshold
	}
	if s.Severity == "" {
		s.Severity = DefaultSeverity
	}
	if s.Type == TypeHTTP && s.HTTP == nil {
		s.HTTP = &HTTPSpec{}
	}
	if s.Type == TypeMailPosture && s.MailPosture == nil {
		s.MailPosture = &MailPostureSpec{}
	}
	if s.Type == TypePush && s.Push == nil {
		s.Push = &PushSpec{}
	}
}

// Validate checks one spec on its own (not its dependencies, which need the
// whole set: see ValidateSet). It returns a *FieldError.
func (s *Spec) Validate() error {
	if s.Name == "" {
		return &FieldError{"name", "is required"}
	}
	if !nameRE.MatchString(s.Name) {
		return &FieldError{"name", fmt.Sprintf("%q must be 1-128 letters, digits, '.', '_' or '-'", s.Name)}
	}
	known := false
	for _, t := range Types {
		if s.Type == t {
			known = true
		}
	}
	if !known {
		if s.Type == "" {
			return &FieldError{"type", "is required (one of " + strings.Join(Types, ", ") + ")"}
		}
		return &FieldError{"type", fmt.Sprintf("unknown check type %q (one of %s)", s.Type, strings.Join(Types, ", "))}
	}
	if s.Type != TypePush && strings.TrimSpace(s.Target) == "" {
		return &FieldError{"target", "is required for a " + s.Type + " check"}
	}
	if s.Interval < 0 {
		return &FieldError{"interval", "must not be negative"}
	}
	if s.Interval != 0 && s.Interval.D() < time.Second {
		return &FieldError{"interval", "must be at least 1s"}
	}
	if s.Timeout < 0 {
		return &FieldError{"timeout", "must not be negative"}
	}
	if s.Type != TypePush && s.Interval > 0 && s.Timeout > s.Interval {
		return &FieldError{"timeout", fmt.Sprintf("%s must not exceed the interval (%s)", s.Timeout, s.Interval)}
	}
	if s.FailThreshold < 0 {
		return &FieldError{"fail_threshold", "must not be negative"}
	}
	if s.SuccessThreshold < 0 {
		return &FieldError{"success_threshold", "must not be negative"}
	}
	if s.Severity != "" {
		ok := false
		for _, v := range Severities {
			if s.Severity == v {
				ok = true
			}
		}
		if !ok {
			return &FieldError{"severity", fmt.Sprintf("unknown severity %q (one of %s)", s.Severity, strings.Join(Severities, ", "))}
		}
	}
	for i, d := range s.DependsOn {
		if d == s.Name {
			return &FieldError{fmt.Sprintf("depends_on[%d]", i), "a check cannot depend on itself"}
		}
	}
	blocks := map[string]bool{TypeHTTP: s.HTTP != nil, TypeTCP: s.TCP != nil, TypeDNS: s.DNS != nil,
		TypeTLS: s.TLS != nil, TypeSMTP: s.SMTP != nil, TypePush: s.Push != nil,
		TypeMailPosture: s.MailPosture != nil}
	for t, present := range blocks {
		if present && t != s.Type {
			return &FieldError{t, fmt.Sprintf("options block %q does not apply to a %s check", t, s.Type)}
		}
	}
	switch s.Type {
	case TypeHTTP:
		if !strings.HasPrefix(s.Target, "http://") && !strings.HasPrefix(s.Target, "https://") {
			return &FieldError{"target", "an http check needs an http:// or https:// URL"}
		}
		if h := s.HTTP; h != nil {
			if h.BodyRegex != "" {
				if _, err := regexp.Compile(h.BodyRegex); err != nil {
					return &FieldError{"http.body_regex", err.Error()}
				}
			}
			for i, c := range h.ExpectStatus {
				if c < 100 || c > 599 {
					return &FieldError{fmt.Sprintf("http.expect_status[%d]", i), fmt.Sprintf("%d is not an HTTP status code", c)}
				}
			}
			for i, j := range h.JSON {
				if j.Path == "" {
					return &FieldError{fmt.Sprintf("http.json[%d].path", i), "is required"}
				}
			}
			if h.MaxLatency < 0 {
				return &FieldError{"http.max_latency", "must not be negative"}
			}
		}
	case TypeTCP:
		if _, port, err := net.SplitHostPort(s.Target); err != nil || port == "" {
			return &FieldError{"target", fmt.Sprintf("a tcp check needs host:port, got %q", s.Target)}
		}
	case TypeICMP:
		if strings.ContainsAny(s.Target, "/:") && net.ParseIP(s.Target) == nil {
			return &FieldError{"target", fmt.Sprintf("an icmp check needs a host name or IP address, got %q", s.Target)}
		}
	case TypeDNS:
		if s.DNS != nil && s.DNS.RecordType != "" {
			switch strings.ToUpper(s.DNS.RecordType) {
			case "A", "AAAA", "CNAME", "MX", "NS", "TXT", "PTR", "SOA", "SRV", "CAA":
			default:
				return &FieldError{"dns.record_type", fmt.Sprintf("unsupported record type %q", s.DNS.RecordType)}
			}
		}
	case TypeMailPosture:
		if err := validateMailPosture(s); err != nil {
			return err
		}
	case TypePush:
		if s.Push != nil && s.Push.Grace < 0 {
			return &FieldError{"push.grace", "must not be negative"}
		}
	}
	return nil
}

// ValidateSet checks the dependencies of a whole set of specs: every parent
// must exist and there must be no cycle. It returns the name of the check at
// fault with a *FieldError.
func ValidateSet(specs []Spec) (string, error) {
	byName := make(map[string]*Spec, len(specs))
	for i := range specs {
		if _, dup := byName[specs[i].Name]; dup {
			return specs[i].Name, &FieldError{"name", fmt.Sprintf("duplicate check name %q", specs[i].Name)}
		}
		byName[specs[i].Name] = &specs[i]
	}
	for _, s := range specs {
		for i, d := range s.DependsOn {
			if _, ok := byName[d]; !ok {
				return s.Name, &FieldError{fmt.Sprintf("depends_on[%d]", i), fmt.Sprintf("check %q does not exist", d)}
			}
		}
	}
	// Depth-first search for a cycle; colour 1 = on the stack, 2 = done.
	colour := make(map[string]int, len(specs))
	var path []string
	var visit func(n string) []string
	visit = func(n string) []string {
		colour[n] = 1
		path = append(path, n)
		for _, d := range byName[n].DependsOn {
			switch colour[d] {
			case 1:
				start := 0
				for i, p := range path {
					if p == d {
						start = i
					}
				}
				return append(append([]string{}, path[start:]...), d)
			case 0:
				if c := visit(d); c != nil {
					return c
				}
			}
		}
		path = path[:len(path)-1]
		colour[n] = 2
		return nil
	}
	for _, s := range specs {
		if colour[s.Name] == 0 {
			if c := visit(s.Name); c != nil {
				return c[0], &FieldError{"depends_on", "dependency cycle: " + strings.Join(c, " -> ")}
			}
		}
	}
	return "", nil
}

// Result is the outcome of one probe run.
type Result struct {
	Check    string        `json:"check"`
	Time     time.Time     `json:"time"`
	Duration time.Duration `json:"duration_ns"`
	OK       bool          `json:"ok"`
	// Error says why the probe failed; empty when OK.
	Error string `json:"error,omitempty"`
	// StatusCode is the HTTP status or SMTP reply code, when there is one.
	StatusCode int `json:"status_code,omitempty"`
	// Detail is a short type-specific summary: DNS answers, certificate
	// expiry, the SMTP banner.
	Detail string `json:"detail,omitempty"`
}
