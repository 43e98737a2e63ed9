// Package firewall enforces active-response decisions in a host's packet
// filter. It manages only its own state — the nftables table "inet nocsoc"
// or, where nft is missing, the iptables chains NOCSOC and NOCSOC-ISOLATE
// with ipset sets — so an operator's own rules are never touched. Every
// change is applied as one transaction, so a failure leaves no partial
// state. The agent uses it; it imports no server packages.
package firewall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"time"
)

// Errors a caller can test for with errors.Is; each arrives wrapped with the
// tool's own message.
var (
	// ErrNotInstalled: the firewall tool (nft, iptables, ipset) is not
	// installed or not on PATH.
	ErrNotInstalled = errors.New("firewall tool not found")
	// ErrPermission: the tool ran but the kernel refused (not root, no
	// CAP_NET_ADMIN).
	ErrPermission = errors.New("permission denied")
	// ErrOverlap: the range overlaps one already blocked (nftables
	// interval sets do not nest). Unblock the other first.
	ErrOverlap = errors.New("overlaps an address or range already blocked")
)

// Runner runs a firewall tool with stdin and returns its standard output.
// Tests inject one that prefixes `ip netns exec NS` or records commands.
type Runner interface {
	Run(ctx context.Context, stdin string, name string, args ...string) (string, error)
}

// ExecRunner runs commands with os/exec. Prefix, when set, is prepended to
// every command (e.g. {"ip", "netns", "exec", "ns1"}).
type ExecRunner struct {
	Prefix []string
}

// Run implements Runner. A missing program is ErrNotInstalled; a refusal
// by the kernel is ErrPermission; both keep the tool's message.
func (r ExecRunner) Run(ctx context.Context, stdin string, name string, args ...string) (string, error) {
	argv := append(append(append([]string{}, r.Prefix...), name), args...)
	// Look the tool itself up, not the prefix: "ip netns exec" would
	// otherwise hide a missing nft behind exit status 1.
	if _, err := exec.LookPath(name); err != nil {
		return "", fmt.Errorf("%s: %w", name, ErrNotInstalled)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), classify(name, errb.String(), err)
	}
	return out.String(), nil
}

func classify(name, stderr string, err error) error {
	if errors.Is(err, exec.ErrNotFound) {
		return fmt.Errorf("%s: %w", name, ErrNotInstalled)
	}
	msg := strings.TrimSpace(stderr)
	if msg == "" {
		msg = err.Error()
	}
	low := strings.ToLower(msg)
	switch {
	case strings.Contains(low, "operation not permitted"), strings.Contains(low, "permission denied"),
		strings.Contains(low, "you must be root"):
		return fmt.Errorf("%s: %s: %w", name, firstLine(msg), ErrPermission)
	case strings.Contains(low, "overlaps with an existing"), strings.Contains(low, "conflicting intervals"):
		return fmt.Errorf("%s: %s: %w", name, firstLine(msg), ErrOverlap)
	}
	return fmt.Errorf("%s: %s", name, msg)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// IsolateSpec says what an isolated host may still talk to.
type IsolateSpec struct {
	// Servers are the nocsoc server addresses: the host keeps its own
	// connections to them (new outbound, established inbound), so the
	// agent can still receive the release.
	Servers []netip.Addr
	// Allow are admin ranges that may reach the host and be reached by it.
	Allow []netip.Prefix
}

// Validate refuses an isolation that would cut the agent off from its
// server.
func (s IsolateSpec) Validate() error {
	if len(s.Servers) == 0 {
		return errors.New("isolate: at least one server address is required, or the agent could never be released")
	}
	for _, a := range s.Servers {
		if !a.IsValid() || a.IsUnspecified() {
			return fmt.Errorf("isolate: server address %q is not usable", a)
		}
	}
	for _, p := range s.Allow {
		if !p.IsValid() {
			return fmt.Errorf("isolate: allow-list entry %q is not a range", p)
		}
	}
	return nil
}

// Firewall is a host firewall backend.
type Firewall interface {
	// Name says which backend this is ("nftables", "iptables").
	Name() string
	// Block drops traffic from p for d (the kernel expires the entry even
	// if the agent never hears of the unblock). Blocking an address
	// already blocked refreshes its timeout.
	Block(ctx context.Context, p netip.Prefix, d time.Duration) error
	// Unblock removes p; unblocking what is not blocked is not an error.
	Unblock(ctx context.Context, p netip.Prefix) error
	// Isolate drops everything except loopback, the servers and the
	// allow-list; isolating again replaces the previous spec.
	Isolate(ctx context.Context, spec IsolateSpec) error
	// Release removes the isolation; releasing a host that is not
	// isolated is not an error.
	Release(ctx context.Context) error
	// Blocked lists the prefixes currently blocked.
	Blocked(ctx context.Context) ([]netip.Prefix, error)
}

// New returns the nftables backend when nft is installed, else the
// iptables backend when iptables and ipset are, else an error wrapping
// ErrNotInstalled that names both.
func New(ctx context.Context, r Runner) (Firewall, error) {
	if r == nil {
		r = ExecRunner{}
	}
	_, errN := r.Run(ctx, "", "nft", "--version")
	if errN == nil {
		return &NFT{Runner: r}, nil
	}
	if !errors.Is(errN, ErrNotInstalled) {
		return nil, fmt.Errorf("firewall: %w", errN)
	}
	_, errI := r.Run(ctx, "", "iptables", "--version")
	if errI == nil {
		if _, errS := r.Run(ctx, "", "ipset", "--version"); errS != nil {
			return nil, fmt.Errorf("firewall: nft not found and the iptables fallback needs ipset: %w", errS)
		}
		return &IPTables{Runner: r}, nil
	}
	return nil, fmt.Errorf("firewall: neither nft nor iptables found (install Debian's nftables): %w", ErrNotInstalled)
}

// ParsePrefix reads an address ("203.0.113.9") or a CIDR range
// ("203.0.113.0/24") into a masked prefix.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR range", s)
		}
		if p.Addr().Is4In6() {
			return netip.Prefix{}, fmt.Errorf("%q: use the plain IPv4 form", s)
		}
		if p.Masked() != p {
			return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s?", s, p.Masked())
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR range", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// element renders p as an nft set element or ipset entry: a bare address
// for a full-length prefix.
func element(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// seconds rounds d up to whole seconds (at least 1), the unit both nft and
// ipset timeouts take.
func seconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}
