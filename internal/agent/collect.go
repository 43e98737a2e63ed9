package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/mem"
	gnet "github.com/shirou/gopsutil/v4/net"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

// Collector gathers metrics and inventory from the local machine. Root
// prefixes the files it reads directly (dpkg, /proc/net, /etc), so tests
// can point it at a fixture tree.
type Collector struct {
	Root string
	Log  *slog.Logger

	// Network counters of the previous collection, to turn the kernel's
	// cumulative counters into rates.
	prevNet  map[string]gnet.IOCountersStat
	prevTime time.Time
}

func (c *Collector) path(p string) string {
	if c.Root == "" {
		return p
	}
	return filepath.Join(c.Root, p)
}

// Metrics samples CPU, load, memory, swap, disk usage and inodes per
// mount, network throughput and errors, and uptime. A source that fails is
// logged and skipped: partial metrics beat none.
func (c *Collector) Metrics(ctx context.Context, now time.Time) []agentproto.Sample {
	var out []agentproto.Sample
	add := func(name string, v float64, labels ...string) {
		s := agentproto.Sample{Time: now, Name: name, Value: v}
		if len(labels) == 2 {
			s.Labels = map[string]string{labels[0]: labels[1]}
		}
		out = append(out, s)
	}
	warn := func(what string, err error) {
		if c.Log != nil {
			c.Log.Debug("metric source failed", "source", what, "err", err)
		}
	}
	// interval 0 compares with the previous call: no sleeping here.
	if p, err := cpu.PercentWithContext(ctx, 0, false); err == nil && len(p) == 1 {
		add("cpu.percent", p[0])
	} else if err != nil {
		warn("cpu", err)
	}
	if l, err := load.AvgWithContext(ctx); err == nil {
		add("load.1", l.Load1)
		add("load.5", l.Load5)
		add("load.15", l.Load15)
	} else {
		warn("load", err)
	}
	if m, err := mem.VirtualMemoryWithContext(ctx); err == nil {
		add("mem.total_bytes", float64(m.Total))
		add("mem.used_bytes", float64(m.Used))
		add("mem.available_bytes", float64(m.Available))
		add("mem.used_percent", m.UsedPercent)
	} else {
		warn("memory", err)
	}
	if s, err := mem.SwapMemoryWithContext(ctx); err == nil {
		add("swap.total_bytes", float64(s.Total))
		add("swap.used_bytes", float64(s.Used))
		add("swap.used_percent", s.UsedPercent)
	} else {
		warn("swap", err)
	}
	if parts, err := disk.PartitionsWithContext(ctx, false); err == nil {
		seen := map[string]bool{}
		for _, p := range parts {
			if seen[p.Mountpoint] {
				continue
			}
			seen[p.Mountpoint] = true
			u, err := disk.UsageWithContext(ctx, p.Mountpoint)
			if err != nil || u.Total == 0 {
				continue
			}
			add("disk.total_bytes", float64(u.Total), "mount", p.Mountpoint)
			add("disk.used_bytes", float64(u.Used), "mount", p.Mountpoint)
			add("disk.used_percent", u.UsedPercent, "mount", p.Mountpoint)
			if u.InodesTotal > 0 {
				add("disk.inodes_used", float64(u.InodesUsed), "mount", p.Mountpoint)
				add("disk.inodes_free", float64(u.InodesFree), "mount", p.Mountpoint)
				add("disk.inodes_used_percent", u.InodesUsedPercent, "mount", p.Mountpoint)
			}
		}
	} else {
		warn("disk", err)
	}
	if counters, err := gnet.IOCountersWithContext(ctx, true); err == nil {
		cur := make(map[string]gnet.IOCountersStat, len(counters))
		for _, n := range counters {
			if n.Name == "lo" {
				continue
			}
			cur[n.Name] = n
			add("net.rx_errors_total", float64(n.Errin), "interface", n.Name)
			add("net.tx_errors_total", float64(n.Errout), "interface", n.Name)
			add("net.rx_dropped_total", float64(n.Dropin), "interface", n.Name)
			prev, ok := c.prevNet[n.Name]
			if secs := now.Sub(c.prevTime).Seconds(); ok && secs > 0 && n.BytesRecv >= prev.BytesRecv && n.BytesSent >= prev.BytesSent {
				add("net.rx_bytes_per_second", float64(n.BytesRecv-prev.BytesRecv)/secs, "interface", n.Name)
				add("net.tx_bytes_per_second", float64(n.BytesSent-prev.BytesSent)/secs, "interface", n.Name)
			}
		}
		c.prevNet, c.prevTime = cur, now
	} else {
		warn("network", err)
	}
	if up, err := host.UptimeWithContext(ctx); err == nil {
		add("host.uptime_seconds", float64(up))
	} else {
		warn("uptime", err)
	}
	return out
}

// Inventory collects the inventory snapshot. Packages, ports, users and
// groups come from files read directly; a missing source (no dpkg on this
// distribution, no systemctl in a container) leaves its list empty.
func (c *Collector) Inventory(ctx context.Context, now time.Time) (agentproto.Inventory, error) {
	inv := agentproto.Inventory{CollectedAt: now, OS: runtime.GOOS, Arch: runtime.GOARCH}
	if hi, err := host.InfoWithContext(ctx); err == nil {
		inv.Hostname = hi.Hostname
		inv.Platform, inv.PlatformVersion = hi.Platform, hi.PlatformVersion
		inv.Kernel = hi.KernelVersion
		if hi.KernelArch != "" {
			inv.Arch = hi.KernelArch
		}
		inv.Hardware.Virtual = hi.VirtualizationSystem
		if hi.BootTime > 0 {
			inv.BootTime = time.Unix(int64(hi.BootTime), 0).UTC()
		}
	}
	if inv.Hostname == "" {
		inv.Hostname, _ = os.Hostname()
	}
	if ci, err := cpu.InfoWithContext(ctx); err == nil && len(ci) > 0 {
		inv.Hardware.CPUModel = ci[0].ModelName
	}
	if n, err := cpu.CountsWithContext(ctx, true); err == nil {
		inv.Hardware.CPUs = n
	}
	if m, err := mem.VirtualMemoryWithContext(ctx); err == nil {
		inv.Hardware.MemoryBytes = m.Total
	}
	inv.Hardware.Vendor = readTrim(c.path("/sys/class/dmi/id/sys_vendor"))
	inv.Hardware.Product = readTrim(c.path("/sys/class/dmi/id/product_name"))
	if ifs, err := gnet.InterfacesWithContext(ctx); err == nil {
		for _, i := range ifs {
			if slices.Contains(i.Flags, "loopback") {
				continue
			}
			for _, a := range i.Addrs {
				ip, _, _ := strings.Cut(a.Addr, "/")
				inv.IPs = append(inv.IPs, ip)
			}
		}
		slices.Sort(inv.IPs)
	}
	var errs []error
	// Packages: dpkg's database (Debian, Ubuntu), else apk's (Alpine),
	// else rpm's through `rpm -qa` (RHEL, Fedora, SUSE).
	if f, err := os.Open(c.path("/var/lib/dpkg/status")); err == nil {
		inv.Packages, err = ParseDpkgStatus(f)
		f.Close()
		errs = append(errs, err)
	} else if !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	} else if f, err := os.Open(c.path("/lib/apk/db/installed")); err == nil {
		inv.Packages, err = ParseApkInstalled(f)
		f.Close()
		errs = append(errs, err)
	} else if !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	} else if c.Root == "" {
		pkgs, ok, err := rpmPackages(ctx)
		if ok {
			inv.Packages = pkgs
			errs = append(errs, err)
		}
	}
	for _, proto := range []string{"tcp", "tcp6"} {
		f, err := os.Open(c.path("/proc/net/" + proto))
		if err != nil {
			continue // no IPv6, or not Linux
		}
		ports, err := ParseProcNetTCP(f, proto)
		f.Close()
		errs = append(errs, err)
		inv.Ports = append(inv.Ports, ports...)
	}
	if f, err := os.Open(c.path("/etc/passwd")); err == nil {
		inv.Users, err = ParsePasswd(f)
		f.Close()
		errs = append(errs, err)
	}
	if f, err := os.Open(c.path("/etc/group")); err == nil {
		inv.Groups, err = ParseGroup(f)
		f.Close()
		errs = append(errs, err)
	}
	if c.Root == "" {
		inv.Services = runningServices(ctx)
	}
	if err := errors.Join(errs...); err != nil {
		return inv, fmt.Errorf("inventory: %w", err)
	}
	return inv, nil
}

func readTrim(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// runningServices lists running systemd services, or nil when systemctl
// is absent or systemd is not running (containers).
func runningServices(ctx context.Context) []string {
	bin, err := exec.LookPath("systemctl")
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "list-units", "--type=service", "--state=running", "--no-legend", "--plain", "--no-pager").Output()
	if err != nil {
		return nil
	}
	var svcs []string
	for l := range bytes.Lines(out) {
		if f := strings.Fields(string(l)); len(f) > 0 && strings.HasSuffix(f[0], ".service") {
			svcs = append(svcs, f[0])
		}
	}
	slices.Sort(svcs)
	return svcs
}
