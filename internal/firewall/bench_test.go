package firewall_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/firewall"
	"github.com/nocsoc/nocsoc/internal/firewall/netnstest"
)

// BenchmarkNamespaceTCP measures a TCP connect and a one-byte echo round
// trip from the client to the server namespace while the server's
// nocsoc table blocks 0 or 10,000 other addresses: the per-packet cost of
// a large set (nftables sets are hashed/interval trees, so it should not
// show).
//
//	go test -run '^$' -bench NamespaceTCP ./internal/firewall/
func BenchmarkNamespaceTCP(b *testing.B) {
	for _, n := range []int{0, 10000} {
		b.Run(fmt.Sprintf("blocked=%d", n), func(b *testing.B) {
			netnstest.Require(b, "nft")
			ctx := context.Background()
			p := netnstest.New(b)
			dst := p.Listen(p.Server, p.ServerAddr)
			fw := &firewall.NFT{Runner: firewall.ExecRunner{Prefix: []string{"ip", "netns", "exec", p.Server}}}
			// One real block creates the table and chains, so even n=0
			// runs through the nocsoc chain.
			if err := fw.Block(ctx, netip.MustParsePrefix("198.51.100.1/32"), time.Hour); err != nil {
				b.Fatal(err)
			}
			if n > 0 {
				var sb strings.Builder
				sb.WriteString("add element inet nocsoc block4 { ")
				for i := 0; i < n; i++ {
					if i > 0 {
						sb.WriteString(", ")
					}
					// 100.64.0.0/10: never the namespaces' 10.x addresses.
					fmt.Fprintf(&sb, "100.%d.%d.%d timeout 3600s", 64+i/65536, (i/256)%256, i%256)
				}
				sb.WriteString(" }\n")
				if _, err := fw.Runner.Run(ctx, sb.String(), "nft", "-f", "-"); err != nil {
					b.Fatal(err)
				}
				got, err := fw.Blocked(ctx)
				if err != nil || len(got) != n+1 {
					b.Fatalf("set holds %d elements (err %v), want %d", len(got), err, n+1)
				}
			}
			b.Run("connect", func(b *testing.B) {
				for b.Loop() {
					c, err := netnstest.Dial(p.Client, netip.Addr{}, dst, time.Second)
					if err != nil {
						b.Fatal(err)
					}
					c.Close()
				}
			})
			b.Run("rtt", func(b *testing.B) {
				c, err := netnstest.Dial(p.Client, netip.Addr{}, dst, time.Second)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				buf := []byte{'x'}
				for b.Loop() {
					if _, err := c.Write(buf); err != nil {
						b.Fatal(err)
					}
					if _, err := c.Read(buf); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
