package firewall

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// IPTables is the fallback backend for hosts without nft: ipset sets
// nocsoc4/nocsoc6 (hash:net with timeouts) matched from a dedicated chain
// NOCSOC jumped to from INPUT and FORWARD, and a chain NOCSOC-ISOLATE for
// isolation. Chain contents are written with iptables-restore --noflush and
// set changes with ipset restore, each one all-or-nothing.
type IPTables struct {
	Runner Runner
}

// Name implements Firewall.
func (*IPTables) Name() string { return "iptables" }

// ipsetMaxTimeout is ipset's largest timeout (seconds).
const ipsetMaxTimeout = 2147483

type family struct {
	iptables, restore, set, inet string
}

var (
	fam4 = family{"iptables", "iptables-restore", "nocsoc4", "inet"}
	fam6 = family{"ip6tables", "ip6tables-restore", "nocsoc6", "inet6"}
)

func famFor(p netip.Prefix) family {
	if p.Addr().Is4() {
		return fam4
	}
	return fam6
}

// ensure creates both sets, the NOCSOC chain with its drop rules and the
// jumps from INPUT and FORWARD; each step is idempotent.
func (t *IPTables) ensure(ctx context.Context, f family) error {
	if _, err := t.Runner.Run(ctx, fmt.Sprintf("create %s hash:net family %s timeout 0 -exist\n", f.set, f.inet), "ipset", "restore"); err != nil {
		return fmt.Errorf("iptables: create set %s: %w", f.set, err)
	}
	rules := fmt.Sprintf("*filter\n:NOCSOC - [0:0]\n-F NOCSOC\n-A NOCSOC -m set --match-set %s src -j DROP\nCOMMIT\n", f.set)
	if _, err := t.Runner.Run(ctx, rules, f.restore, "--noflush"); err != nil {
		return fmt.Errorf("iptables: chain NOCSOC: %w", err)
	}
	for _, hook := range []string{"INPUT", "FORWARD"} {
		if err := t.jump(ctx, f, hook, "NOCSOC"); err != nil {
			return err
		}
	}
	return nil
}

// jump inserts `-j chain` at the top of hook unless it is there already.
func (t *IPTables) jump(ctx context.Context, f family, hook, chain string) error {
	if _, err := t.Runner.Run(ctx, "", f.iptables, "-w", "-C", hook, "-j", chain); err == nil {
		return nil
	} else if errors.Is(err, ErrNotInstalled) || errors.Is(err, ErrPermission) {
		return fmt.Errorf("iptables: %w", err)
	}
	if _, err := t.Runner.Run(ctx, "", f.iptables, "-w", "-I", hook, "1", "-j", chain); err != nil {
		return fmt.Errorf("iptables: jump %s→%s: %w", hook, chain, err)
	}
	return nil
}

// Block implements Firewall.
func (t *IPTables) Block(ctx context.Context, p netip.Prefix, d time.Duration) error {
	p = p.Masked()
	f := famFor(p)
	if err := t.ensure(ctx, f); err != nil {
		return err
	}
	sec := seconds(d)
	if sec > ipsetMaxTimeout {
		sec = ipsetMaxTimeout
	}
	// -exist on add refreshes the timeout of an existing entry.
	if _, err := t.Runner.Run(ctx, fmt.Sprintf("add %s %s timeout %d -exist\n", f.set, element(p), sec), "ipset", "restore"); err != nil {
		return fmt.Errorf("iptables: block %s: %w", p, err)
	}
	return nil
}

// Unblock implements Firewall.
func (t *IPTables) Unblock(ctx context.Context, p netip.Prefix) error {
	p = p.Masked()
	f := famFor(p)
	if err := t.ensure(ctx, f); err != nil {
		return err
	}
	if _, err := t.Runner.Run(ctx, fmt.Sprintf("del %s %s -exist\n", f.set, element(p)), "ipset", "restore"); err != nil {
		return fmt.Errorf("iptables: unblock %s: %w", p, err)
	}
	return nil
}

// Isolate implements Firewall: NOCSOC-ISOLATE is filled in one
// iptables-restore per family, then jumped to from INPUT, OUTPUT and
// FORWARD.
func (t *IPTables) Isolate(ctx context.Context, spec IsolateSpec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	for _, f := range []family{fam4, fam6} {
		var b strings.Builder
		b.WriteString("*filter\n:NOCSOC-ISOLATE - [0:0]\n-F NOCSOC-ISOLATE\n")
		b.WriteString("-A NOCSOC-ISOLATE -i lo -j RETURN\n-A NOCSOC-ISOLATE -o lo -j RETURN\n")
		for _, a := range spec.Servers {
			a = a.Unmap()
			if a.Is4() != (f == fam4) {
				continue
			}
			fmt.Fprintf(&b, "-A NOCSOC-ISOLATE -d %s -j RETURN\n", a)
			fmt.Fprintf(&b, "-A NOCSOC-ISOLATE -s %s -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN\n", a)
		}
		for _, p := range spec.Allow {
			p = p.Masked()
			if p.Addr().Is4() != (f == fam4) {
				continue
			}
			fmt.Fprintf(&b, "-A NOCSOC-ISOLATE -s %s -j RETURN\n-A NOCSOC-ISOLATE -d %s -j RETURN\n", p, p)
		}
		if f == fam6 {
			b.WriteString("-A NOCSOC-ISOLATE -p ipv6-icmp -j RETURN\n")
		}
		b.WriteString("-A NOCSOC-ISOLATE -j DROP\nCOMMIT\n")
		if _, err := t.Runner.Run(ctx, b.String(), f.restore, "--noflush"); err != nil {
			return fmt.Errorf("iptables: isolate: %w", err)
		}
		for _, hook := range []string{"INPUT", "OUTPUT", "FORWARD"} {
			if err := t.jump(ctx, f, hook, "NOCSOC-ISOLATE"); err != nil {
				return err
			}
		}
	}
	return nil
}

// Release implements Firewall.
func (t *IPTables) Release(ctx context.Context) error {
	for _, f := range []family{fam4, fam6} {
		for _, hook := range []string{"INPUT", "OUTPUT", "FORWARD"} {
			for {
				if _, err := t.Runner.Run(ctx, "", f.iptables, "-w", "-D", hook, "-j", "NOCSOC-ISOLATE"); err != nil {
					if errors.Is(err, ErrNotInstalled) || errors.Is(err, ErrPermission) {
						return fmt.Errorf("iptables: release: %w", err)
					}
					break // no (more) jump
				}
			}
		}
		// The chain is left empty rather than deleted: deleting fails
		// while anything still references it.
		if _, err := t.Runner.Run(ctx, "*filter\n:NOCSOC-ISOLATE - [0:0]\n-F NOCSOC-ISOLATE\nCOMMIT\n", f.restore, "--noflush"); err != nil {
			return fmt.Errorf("iptables: release: %w", err)
		}
	}
	return nil
}

// Blocked implements Firewall.
func (t *IPTables) Blocked(ctx context.Context) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range []family{fam4, fam6} {
		s, err := t.Runner.Run(ctx, "", "ipset", "list", f.set)
		if err != nil {
			if strings.Contains(err.Error(), "does not exist") {
				continue
			}
			return nil, fmt.Errorf("iptables: list %s: %w", f.set, err)
		}
		members := false
		for _, line := range strings.Split(s, "\n") {
			if strings.HasPrefix(line, "Members:") {
				members = true
				continue
			}
			if !members || strings.TrimSpace(line) == "" {
				continue
			}
			p, err := ParsePrefix(strings.Fields(line)[0])
			if err != nil {
				return nil, fmt.Errorf("iptables: list %s: %w", f.set, err)
			}
			out = append(out, p)
		}
	}
	return out, nil
}
