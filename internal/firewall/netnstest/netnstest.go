// Package netnstest builds throw-away network namespaces for firewall
// tests: a "client" and a "server" namespace joined by a veth pair, with
// sockets opened inside either one from the test process itself (no helper
// programs). It needs root and iproute2; Require skips without them, or
// fails when CI=true.
package netnstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Require skips t (fails it under CI=true) unless the process is root and
// the programs are on PATH.
func Require(t testing.TB, programs ...string) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root (network namespaces)"
	}
	for _, p := range append([]string{"ip"}, programs...) {
		if why != "" {
			break
		}
		if _, err := exec.LookPath(p); err != nil {
			why = fmt.Sprintf("needs %s on PATH (Debian: %s)", p, debianPackage(p))
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s; CI must provide it", why)
	}
	t.Skipf("skipping: %s", why)
}

func debianPackage(p string) string {
	switch p {
	case "ip":
		return "iproute2"
	case "nft":
		return "nftables"
	case "iptables", "ip6tables", "iptables-restore":
		return "iptables"
	}
	return p
}

// Pair is a client and a server namespace joined by a veth pair on
// 10.x.y.0/24: the client has .1, the server .2 (plus any Extra
// addresses added with AddServerAddr).
type Pair struct {
	Client, Server         string
	ClientAddr, ServerAddr netip.Addr
	serverIf, clientIf     string
	t                      testing.TB
}

// New creates the namespaces and removes them in t.Cleanup. Names are
// random, so parallel tests and leftovers never collide.
func New(t testing.TB) *Pair {
	t.Helper()
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(b[:])
	p := &Pair{
		Client: "nsc-c-" + id, Server: "nsc-s-" + id,
		clientIf: "vc" + id, serverIf: "vs" + id, t: t,
	}
	// 10.<b0>.<b1>.0/24, distinct per test (collisions do not matter
	// across namespaces anyway; only readability).
	base := fmt.Sprintf("10.%d.%d.", 200+int(b[0])%50, b[1])
	p.ClientAddr = netip.MustParseAddr(base + "1")
	p.ServerAddr = netip.MustParseAddr(base + "2")
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", p.Client).Run()
		_ = exec.Command("ip", "netns", "del", p.Server).Run()
	})
	p.ip("netns", "add", p.Client)
	p.ip("netns", "add", p.Server)
	p.ip("link", "add", p.clientIf, "netns", p.Client, "type", "veth", "peer", "name", p.serverIf, "netns", p.Server)
	p.Exec(p.Client, "ip", "addr", "add", p.ClientAddr.String()+"/24", "dev", p.clientIf)
	p.Exec(p.Server, "ip", "addr", "add", p.ServerAddr.String()+"/24", "dev", p.serverIf)
	for _, ns := range []struct{ ns, dev string }{{p.Client, p.clientIf}, {p.Server, p.serverIf}} {
		p.Exec(ns.ns, "ip", "link", "set", "lo", "up")
		p.Exec(ns.ns, "ip", "link", "set", ns.dev, "up")
	}
	// The kernel reports carrier on a fresh veth after a link-watch delay
	// (up to a second); traffic before that is dropped.
	for _, ns := range []struct{ ns, dev string }{{p.Client, p.clientIf}, {p.Server, p.serverIf}} {
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(p.Exec(ns.ns, "ip", "-o", "link", "show", "dev", ns.dev), "state UP") {
			if time.Now().After(deadline) {
				t.Fatalf("veth %s in %s never came up", ns.dev, ns.ns)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return p
}

// AddClientAddr gives the client namespace another address on the link
// (another "host" to connect from or to).
func (p *Pair) AddClientAddr(a netip.Addr) {
	p.t.Helper()
	p.Exec(p.Client, "ip", "addr", "add", a.String()+"/24", "dev", p.clientIf)
}

func (p *Pair) ip(args ...string) {
	p.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		p.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// Exec runs a command inside namespace ns and fails the test on error.
func (p *Pair) Exec(ns string, args ...string) string {
	p.t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("in %s: %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// In runs fn on an OS thread moved into namespace ns. Sockets fn opens
// belong to ns for their whole life, whichever thread later uses them.
// The thread is discarded afterwards (never returned to the pool).
func In(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the goroutine exits locked, so the runtime
		// kills this thread instead of reusing it in the wrong namespace.
		f, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Listen opens a TCP listener in ns on addr:0 that accepts and echoes
// until the test ends.
func (p *Pair) Listen(ns string, addr netip.Addr) netip.AddrPort {
	p.t.Helper()
	var ln net.Listener
	err := In(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
		return err
	})
	if err != nil {
		p.t.Fatalf("listen in %s: %v", ns, err)
	}
	p.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 512)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// Dial connects from ns (from source address src when valid) to dst
// with a timeout.
func Dial(ns string, src netip.Addr, dst netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := In(ns, func() error {
		d := net.Dialer{Timeout: timeout}
		if src.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		var err error
		c, err = d.DialContext(ctx, "tcp", dst.String())
		return err
	})
	return c, err
}

// CanConnect reports whether a TCP connection from ns (source src, if
// valid) to dst completes and echoes a byte within timeout.
func CanConnect(ns string, src netip.Addr, dst netip.AddrPort, timeout time.Duration) bool {
	c, err := Dial(ns, src, dst, timeout)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte{'x'}); err != nil {
		return false
	}
	var b [1]byte
	_, err = c.Read(b[:])
	return err == nil
}
