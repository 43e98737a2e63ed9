package firewall_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/firewall"
	"github.com/nocsoc/nocsoc/internal/firewall/netnstest"
)

const dialTimeout = 500 * time.Millisecond

func backends(t *testing.T) map[string]func(firewall.Runner) firewall.Firewall {
	return map[string]func(firewall.Runner) firewall.Firewall{
		"nft":      func(r firewall.Runner) firewall.Firewall { return &firewall.NFT{Runner: r} },
		"iptables": func(r firewall.Runner) firewall.Firewall { return &firewall.IPTables{Runner: r} },
	}
}

func require(t *testing.T, name string) {
	if name == "nft" {
		netnstest.Require(t, "nft")
	} else {
		netnstest.Require(t, "iptables", "ip6tables", "ipset")
	}
}

// TestBlockUnblockInNamespaces blocks the client's address in the server
// namespace's firewall and checks a real TCP connection fails, then
// succeeds again after the unblock.
func TestBlockUnblockInNamespaces(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			require(t, name)
			ctx := context.Background()
			p := netnstest.New(t)
			dst := p.Listen(p.Server, p.ServerAddr)
			fw := mk(firewall.ExecRunner{Prefix: []string{"ip", "netns", "exec", p.Server}})

			if !netnstest.CanConnect(p.Client, netip.Addr{}, dst, dialTimeout) {
				t.Fatal("before any block: cannot connect")
			}
			client := netip.PrefixFrom(p.ClientAddr, 32)
			if err := fw.Block(ctx, client, time.Hour); err != nil {
				t.Fatal(err)
			}
			// Blocking twice refreshes, never fails.
			if err := fw.Block(ctx, client, 2*time.Hour); err != nil {
				t.Fatalf("second block: %v", err)
			}
			if netnstest.CanConnect(p.Client, netip.Addr{}, dst, dialTimeout) {
				t.Fatal("blocked client still connects")
			}
			got, err := fw.Blocked(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(got, client) {
				t.Errorf("Blocked() = %v, want it to hold %s", got, client)
			}
			if err := fw.Unblock(ctx, client); err != nil {
				t.Fatal(err)
			}
			if err := fw.Unblock(ctx, client); err != nil {
				t.Fatalf("second unblock: %v", err)
			}
			if !netnstest.CanConnect(p.Client, netip.Addr{}, dst, dialTimeout) {
				t.Fatal("after unblock: cannot connect")
			}
		})
	}
}

// TestBlockRangeAndKernelTimeout blocks a CIDR holding the client with a
// one-second timeout: the kernel drops the entry by itself (the safety
// net when the agent never hears of the unblock).
func TestBlockRangeAndKernelTimeout(t *testing.T) {
	netnstest.Require(t, "nft")
	ctx := context.Background()
	p := netnstest.New(t)
	dst := p.Listen(p.Server, p.ServerAddr)
	fw := &firewall.NFT{Runner: firewall.ExecRunner{Prefix: []string{"ip", "netns", "exec", p.Server}}}
	rng := netip.PrefixFrom(p.ClientAddr, 24).Masked()
	if err := fw.Block(ctx, rng, time.Second); err != nil {
		t.Fatal(err)
	}
	if netnstest.CanConnect(p.Client, netip.Addr{}, dst, dialTimeout) {
		t.Fatal("client in blocked range still connects")
	}
	// An address inside a blocked range overlaps it: refused, nothing
	// changed.
	err := fw.Block(ctx, netip.PrefixFrom(p.ClientAddr, 32), time.Hour)
	if !errors.Is(err, firewall.ErrOverlap) {
		t.Fatalf("block inside blocked range: err = %v, want ErrOverlap", err)
	}
	// Polling real kernel state: the kernel's own timer, not ours.
	deadline := time.Now().Add(5 * time.Second)
	for netnstest.CanConnect(p.Client, netip.Addr{}, dst, 200*time.Millisecond) == false {
		if time.Now().After(deadline) {
			t.Fatal("kernel timeout never removed the block")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestIsolateRelease isolates the server namespace's host: only the
// configured "nocsoc server" address (.1 of the client side) and the
// admin allow-list stay reachable; release restores everything.
func TestIsolateRelease(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			require(t, name)
			ctx := context.Background()
			p := netnstest.New(t)
			other := p.ClientAddr.Next().Next().Next() // .4: some other host
			admin := other.Next()                      // .5: the admin's workstation
			p.AddClientAddr(other)
			p.AddClientAddr(admin)
			hostSvc := p.Listen(p.Server, p.ServerAddr) // a service on the isolated host
			nocsoc := p.Listen(p.Client, p.ClientAddr)  // "the nocsoc server"
			otherSvc := p.Listen(p.Client, other)       // another host's service
			fw := mk(firewall.ExecRunner{Prefix: []string{"ip", "netns", "exec", p.Server}})

			err := fw.Isolate(ctx, firewall.IsolateSpec{
				Servers: []netip.Addr{p.ClientAddr},
				Allow:   []netip.Prefix{netip.PrefixFrom(admin, 32)},
			})
			if err != nil {
				t.Fatal(err)
			}
			checks := []struct {
				name string
				ns   string
				src  netip.Addr
				dst  netip.AddrPort
				want bool
			}{
				{"host → nocsoc server", p.Server, netip.Addr{}, nocsoc, true},
				{"host → other host", p.Server, netip.Addr{}, otherSvc, false},
				{"other host → host", p.Client, other, hostSvc, false},
				{"admin → host", p.Client, admin, hostSvc, true},
				{"host loopback", p.Server, netip.Addr{}, p.Listen(p.Server, netip.MustParseAddr("127.0.0.1")), true},
			}
			for _, c := range checks {
				if got := netnstest.CanConnect(c.ns, c.src, c.dst, dialTimeout); got != c.want {
					t.Errorf("isolated: %s: connected = %v, want %v", c.name, got, c.want)
				}
			}
			if err := fw.Release(ctx); err != nil {
				t.Fatal(err)
			}
			if err := fw.Release(ctx); err != nil {
				t.Fatalf("second release: %v", err)
			}
			for _, c := range checks {
				if !netnstest.CanConnect(c.ns, c.src, c.dst, dialTimeout) {
					t.Errorf("released: %s: cannot connect", c.name)
				}
			}
		})
	}
}

// TestOnlyOwnTable checks the nft backend leaves a user's own table alone
// and that release on a never-isolated host works.
func TestOnlyOwnTable(t *testing.T) {
	netnstest.Require(t, "nft")
	ctx := context.Background()
	p := netnstest.New(t)
	p.Exec(p.Server, "nft", "add", "table", "inet", "mine")
	p.Exec(p.Server, "nft", "add", "chain", "inet", "mine", "c")
	fw := &firewall.NFT{Runner: firewall.ExecRunner{Prefix: []string{"ip", "netns", "exec", p.Server}}}
	if err := fw.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fw.Block(ctx, netip.MustParsePrefix("2001:db8::/64"), time.Minute); err != nil {
		t.Fatal(err)
	}
	out := p.Exec(p.Server, "nft", "list", "tables")
	if !strings.Contains(out, "table inet mine") || !strings.Contains(out, "table inet nocsoc") {
		t.Errorf("tables = %q", out)
	}
}

// TestErrors: a missing tool and a kernel refusal each name their cause.
func TestErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("not installed", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		_, err := firewall.New(ctx, firewall.ExecRunner{})
		if !errors.Is(err, firewall.ErrNotInstalled) || !strings.Contains(err.Error(), "nft") {
			t.Fatalf("err = %v, want ErrNotInstalled naming nft", err)
		}
	})
	t.Run("permission denied", func(t *testing.T) {
		dir := t.TempDir()
		fake := "#!/bin/sh\n[ \"$1\" = --version ] && exit 0\ncat >/dev/null\necho 'Error: Could not process rule: Operation not permitted' >&2\nexit 1\n"
		if err := os.WriteFile(filepath.Join(dir, "nft"), []byte(fake), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Setenv("PATH", dir)
		fw, err := firewall.New(ctx, firewall.ExecRunner{})
		if err == nil {
			err = fw.Block(ctx, netip.MustParsePrefix("203.0.113.9/32"), time.Minute)
		}
		if !errors.Is(err, firewall.ErrPermission) {
			t.Fatalf("err = %v, want ErrPermission", err)
		}
	})
	t.Run("isolate without server", func(t *testing.T) {
		fw := &firewall.NFT{Runner: recorder{}}
		if err := fw.Isolate(ctx, firewall.IsolateSpec{}); err == nil || !strings.Contains(err.Error(), "server address") {
			t.Fatalf("err = %v", err)
		}
	})
}

type recorder struct{}

func (recorder) Run(context.Context, string, string, ...string) (string, error) { return "", nil }

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.9":      "203.0.113.9/32",
		"203.0.113.0/24":   "203.0.113.0/24",
		"::ffff:192.0.2.1": "192.0.2.1/32",
		"2001:db8::/32":    "2001:db8::/32",
	} {
		got, err := firewall.ParsePrefix(in)
		if err != nil || got.String() != want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "203.0.113.9/24", "fe80::1%eth0"} {
		if _, err := firewall.ParsePrefix(bad); err == nil {
			t.Errorf("ParsePrefix(%q) accepted", bad)
		}
	}
}
