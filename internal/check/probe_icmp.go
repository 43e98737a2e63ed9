package check

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"syscall"
	"time"

	probing "github.com/prometheus-community/pro-bing"
)

func (p *Prober) probeICMP(ctx context.Context, s Spec, res *Result) error {
	host := hostOf(s.Target)
	ip, err := resolveIP(ctx, host)
	if err != nil {
		return err
	}
	pinger := probing.New("")
	pinger.SetIPAddr(ip)
	pinger.SetPrivileged(true)
	pinger.SetLogger(pingLogger{p.log})
	pinger.Count = 1
	if d, ok := ctx.Deadline(); ok {
		pinger.Timeout = time.Until(d)
	}
	if err := pinger.RunWithContext(ctx); err != nil {
		return pingError(ip, err)
	}
	st := pinger.Statistics()
	if st.PacketsRecv == 0 {
		if ctx.Err() != nil {
			return inPhase("ping "+ip.String(), fmt.Errorf("no echo reply: %w", context.DeadlineExceeded))
		}
		return fmt.Errorf("ping %s: no echo reply", ip)
	}
	res.Detail = fmt.Sprintf("reply from %s in %s", ip, st.AvgRtt.Round(time.Microsecond))
	return nil
}

// pingError says plainly when the raw socket was refused for lack of
// privilege, the usual reason icmp checks fail on a new install.
func pingError(ip *net.IPAddr, err error) error {
	if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("icmp needs root or CAP_NET_RAW (or net.ipv4.ping_group_range): %w", err)
	}
	return inPhase("ping "+ip.String(), err)
}

// resolveIP returns the target's address, preferring IPv4 because most
// networks route it; an IPv6-only name still gets an IPv6 ping.
func resolveIP(ctx context.Context, host string) (*net.IPAddr, error) {
	if ip := net.ParseIP(host); ip != nil {
		return &net.IPAddr{IP: ip}, nil
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, inPhase("resolve "+host, err)
	}
	for _, a := range addrs {
		if a.IP.To4() != nil {
			return &a, nil
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("resolve %s: no addresses", host)
	}
	return &addrs[0], nil
}

// pingLogger sends pro-bing's logs to the injected slog logger instead of
// the global log package.
type pingLogger struct{ log *slog.Logger }

func (l pingLogger) Fatalf(format string, v ...any) { l.log.Error(fmt.Sprintf(format, v...)) }
func (l pingLogger) Errorf(format string, v ...any) { l.log.Error(fmt.Sprintf(format, v...)) }
func (l pingLogger) Warnf(format string, v ...any)  { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l pingLogger) Infof(format string, v ...any)  { l.log.Info(fmt.Sprintf(format, v...)) }
func (l pingLogger) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
