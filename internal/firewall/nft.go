package firewall

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Table is the nftables table nocsoc owns (family inet). Nothing outside it
// is ever changed.
const Table = "nocsoc"

// NFT is the nftables backend. Every method sends one `nft -f -`
// transaction that first (re)declares the table, its sets and its blocking
// chains, so it works on a fresh host and is all-or-nothing.
type NFT struct {
	Runner Runner
}

// Name implements Firewall.
func (*NFT) Name() string { return "nftables" }

// base declares the table, the two interval+timeout sets and the input and
// forward chains that drop their members. The chains are flushed and
// refilled, so repeating base is idempotent.
const nftBase = `add table inet nocsoc
add set inet nocsoc block4 { type ipv4_addr; flags interval,timeout; }
add set inet nocsoc block6 { type ipv6_addr; flags interval,timeout; }
add chain inet nocsoc input { type filter hook input priority -10; policy accept; }
add chain inet nocsoc forward { type filter hook forward priority -10; policy accept; }
flush chain inet nocsoc input
flush chain inet nocsoc forward
add rule inet nocsoc input ip saddr @block4 drop
add rule inet nocsoc input ip6 saddr @block6 drop
add rule inet nocsoc forward ip saddr @block4 drop
add rule inet nocsoc forward ip6 saddr @block6 drop
`

func setFor(p netip.Prefix) string {
	if p.Addr().Is4() {
		return "block4"
	}
	return "block6"
}

func (n *NFT) apply(ctx context.Context, script string) error {
	if _, err := n.Runner.Run(ctx, script, "nft", "-f", "-"); err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	return nil
}

// BlockScript is the transaction Block sends (exported for the agent's
// dry-run output and for tests that record commands).
func BlockScript(p netip.Prefix, d time.Duration) string {
	set, el := setFor(p), element(p)
	// add + delete + add: the element exists afterwards with the new
	// timeout whether or not it existed before (add alone keeps an old
	// timeout; delete alone fails on a missing element).
	return nftBase + fmt.Sprintf("add element inet nocsoc %[1]s { %[2]s }\ndelete element inet nocsoc %[1]s { %[2]s }\nadd element inet nocsoc %[1]s { %[2]s timeout %[3]ds }\n",
		set, el, seconds(d))
}

// Block implements Firewall.
func (n *NFT) Block(ctx context.Context, p netip.Prefix, d time.Duration) error {
	if !p.IsValid() {
		return fmt.Errorf("nftables: block: invalid prefix")
	}
	return n.apply(ctx, BlockScript(p.Masked(), d))
}

// Unblock implements Firewall.
func (n *NFT) Unblock(ctx context.Context, p netip.Prefix) error {
	if !p.IsValid() {
		return fmt.Errorf("nftables: unblock: invalid prefix")
	}
	p = p.Masked()
	set, el := setFor(p), element(p)
	// Adding first makes the delete succeed when the element is already
	// gone (expired in the kernel, or never there).
	return n.apply(ctx, nftBase+fmt.Sprintf("add element inet nocsoc %[1]s { %[2]s }\ndelete element inet nocsoc %[1]s { %[2]s }\n", set, el))
}

// Isolation chains: input and output hooked after the block chains, with
// policy drop, and forward dropping everything.
const nftIsolateDecl = `add chain inet nocsoc isolate_in { type filter hook input priority -5; policy drop; }
add chain inet nocsoc isolate_out { type filter hook output priority -5; policy drop; }
add chain inet nocsoc isolate_fwd { type filter hook forward priority -5; policy drop; }
`

// IsolateScript is the transaction Isolate sends.
func IsolateScript(spec IsolateSpec) string {
	var b strings.Builder
	b.WriteString(nftBase)
	b.WriteString(nftIsolateDecl)
	b.WriteString("flush chain inet nocsoc isolate_in\nflush chain inet nocsoc isolate_out\nflush chain inet nocsoc isolate_fwd\n")
	b.WriteString("add rule inet nocsoc isolate_in iif lo accept\n")
	b.WriteString("add rule inet nocsoc isolate_out oif lo accept\n")
	v4, v6 := splitAddrs(spec.Servers)
	if v4 != "" {
		fmt.Fprintf(&b, "add rule inet nocsoc isolate_in ip saddr { %s } ct state established,related accept\n", v4)
		fmt.Fprintf(&b, "add rule inet nocsoc isolate_out ip daddr { %s } accept\n", v4)
	}
	if v6 != "" {
		fmt.Fprintf(&b, "add rule inet nocsoc isolate_in ip6 saddr { %s } ct state established,related accept\n", v6)
		fmt.Fprintf(&b, "add rule inet nocsoc isolate_out ip6 daddr { %s } accept\n", v6)
	}
	a4, a6 := splitPrefixes(spec.Allow)
	if a4 != "" {
		fmt.Fprintf(&b, "add rule inet nocsoc isolate_in ip saddr { %s } accept\n", a4)
		fmt.Fprintf(&b, "add rule inet nocsoc isolate_out ip daddr { %s } accept\n", a4)
	}
	if a6 != "" {
		fmt.Fprintf(&b, "add rule inet nocsoc isolate_in ip6 saddr { %s } accept\n", a6)
		fmt.Fprintf(&b, "add rule inet nocsoc isolate_out ip6 daddr { %s } accept\n", a6)
	}
	// Neighbour discovery keeps IPv6 reachability to the server working.
	b.WriteString("add rule inet nocsoc isolate_in icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert } accept\n")
	b.WriteString("add rule inet nocsoc isolate_out icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit } accept\n")
	return b.String()
}

// Isolate implements Firewall.
func (n *NFT) Isolate(ctx context.Context, spec IsolateSpec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	return n.apply(ctx, IsolateScript(spec))
}

// Release implements Firewall. Declaring the chains first makes deleting
// them succeed on a host that was never isolated.
func (n *NFT) Release(ctx context.Context) error {
	return n.apply(ctx, nftBase+nftIsolateDecl+`flush chain inet nocsoc isolate_in
flush chain inet nocsoc isolate_out
flush chain inet nocsoc isolate_fwd
delete chain inet nocsoc isolate_in
delete chain inet nocsoc isolate_out
delete chain inet nocsoc isolate_fwd
`)
}

// Blocked implements Firewall by reading both sets as JSON.
func (n *NFT) Blocked(ctx context.Context) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, set := range []string{"block4", "block6"} {
		js, err := n.Runner.Run(ctx, "", "nft", "-j", "list", "set", "inet", Table, set)
		if err != nil {
			if strings.Contains(err.Error(), "No such file or directory") {
				continue // no table yet: nothing blocked
			}
			return nil, fmt.Errorf("nftables: list %s: %w", set, err)
		}
		ps, err := parseNFTSet(js)
		if err != nil {
			return nil, fmt.Errorf("nftables: list %s: %w", set, err)
		}
		out = append(out, ps...)
	}
	return out, nil
}

// parseNFTSet reads the elements of `nft -j list set`: plain addresses,
// {"prefix": {"addr", "len"}} and {"elem": {"val": ..., "timeout"}}.
func parseNFTSet(js string) ([]netip.Prefix, error) {
	var doc struct {
		Nftables []struct {
			Set *struct {
				Elem []json.RawMessage `json:"elem"`
			} `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, o := range doc.Nftables {
		if o.Set == nil {
			continue
		}
		for _, raw := range o.Set.Elem {
			p, err := parseNFTElem(raw)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
	}
	return out, nil
}

func parseNFTElem(raw json.RawMessage) (netip.Prefix, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return ParsePrefix(s)
	}
	var obj struct {
		Elem *struct {
			Val json.RawMessage `json:"val"`
		} `json:"elem"`
		Prefix *struct {
			Addr string `json:"addr"`
			Len  int    `json:"len"`
		} `json:"prefix"`
		Range []string `json:"range"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return netip.Prefix{}, err
	}
	switch {
	case obj.Elem != nil:
		return parseNFTElem(obj.Elem.Val)
	case obj.Prefix != nil:
		return ParsePrefix(fmt.Sprintf("%s/%d", obj.Prefix.Addr, obj.Prefix.Len))
	}
	return netip.Prefix{}, fmt.Errorf("unexpected set element %s", raw)
}

func splitAddrs(as []netip.Addr) (v4, v6 string) {
	var a4, a6 []string
	for _, a := range as {
		a = a.Unmap()
		if a.Is4() {
			a4 = append(a4, a.String())
		} else {
			a6 = append(a6, a.String())
		}
	}
	return strings.Join(a4, ", "), strings.Join(a6, ", ")
}

func splitPrefixes(ps []netip.Prefix) (v4, v6 string) {
	var a4, a6 []string
	for _, p := range ps {
		p = p.Masked()
		if p.Addr().Is4() {
			a4 = append(a4, element(p))
		} else {
			a6 = append(a6, element(p))
		}
	}
	return strings.Join(a4, ", "), strings.Join(a6, ", ")
}
