package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"time"
)

// Attack cadence, in ticks: the first brute force and web scan come
// quickly, then they repeat every few minutes from a new address.
const (
	firstBruteForceTicks = 15
	bruteForceEveryTicks = 180
	firstScanTicks       = 45
	scanEveryTicks       = 240
	backgroundEveryTicks = 2
)

// The demo's hosts and users; all addresses are loopback, private or
// documentation ranges and appear only as text in log lines.
var (
	demoHosts   = []string{"web1", "web2", "db1", "bastion"}
	staffUsers  = []string{"alice", "bob", "deploy", "backup"}
	staffIPs    = []string{"10.0.4.21", "10.0.4.22", "10.0.7.5", "192.0.2.10"}
	webClients  = []string{"192.0.2.31", "192.0.2.44", "192.0.2.87", "10.0.9.12"}
	webPaths    = []string{"/", "/products", "/products/42", "/cart", "/api/v1/basket", "/static/app.js", "/login"}
	scanPaths   = []string{"/.env", "/wp-login.php", "/phpmyadmin/", "/admin", "/.git/config", "/server-status", "/cgi-bin/luci", "/actuator/env", "/config.json", "/backup.zip"}
	guessUsers  = []string{"root", "admin", "ubuntu", "oracle", "postgres", "test", "user", "git", "ftp", "pi", "support", "guest"}
	userAgents  = []string{"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15"}
	scannerUA   = "Mozilla/5.0 zgrab/0.x"
	cronJobs    = []string{"/usr/local/bin/rotate-logs", "/usr/local/bin/backup.sh", "run-parts /etc/cron.hourly"}
	sudoCommand = []string{"/usr/bin/systemctl restart nginx", "/usr/bin/apt-get update", "/usr/bin/journalctl -u shop-api", "/usr/bin/tail -n 100 /var/log/nginx/error.log"}
)

// Run sends SOC traffic to the server's syslog input at syslogAddr (TCP,
// newline framed) until ctx ends: a background of sshd, sudo, cron and
// nginx lines, and every few minutes an SSH brute force (every other one
// followed by a successful login from the attacker) and a web scan burst
// of 404s. The connection is re-dialled when it breaks.
func (d *Demo) Run(ctx context.Context, syslogAddr string) error {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	out := &syslogConn{addr: syslogAddr}
	defer out.close()
	var attacks, scans int
	nextBrute, nextScan := firstBruteForceTicks, firstScanTicks
	for tick := 0; ; tick += backgroundEveryTicks {
		if !d.sleep(ctx, backgroundEveryTicks) {
			return ctx.Err()
		}
		lines := []string{d.background(rng)}
		if tick >= nextBrute {
			lines = append(lines, bruteForce(attacks, attacks%2 == 0)...)
			d.log.Info("simulated attack: SSH brute force", "source", attackerIP(attacks), "followed_by_success", attacks%2 == 0)
			attacks++
			nextBrute += bruteForceEveryTicks
		}
		if tick >= nextScan {
			lines = append(lines, webScan(scans)...)
			d.log.Info("simulated attack: web scan", "source", scannerIP(scans))
			scans++
			nextScan += scanEveryTicks
		}
		if err := out.send(ctx, lines); err != nil {
			d.log.Warn("syslog send failed; retrying on the next tick", "err", err)
		}
	}
}

// syslogConn is a TCP syslog connection dialled on demand.
type syslogConn struct {
	addr string
	c    net.Conn
}

func (s *syslogConn) send(ctx context.Context, lines []string) error {
	if s.c == nil {
		var dl net.Dialer
		c, err := dl.DialContext(ctx, "tcp", s.addr)
		if err != nil {
			return fmt.Errorf("dial syslog %s: %w", s.addr, err)
		}
		s.c = c
	}
	_ = s.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := s.c.Write([]byte(strings.Join(lines, ""))); err != nil {
		s.close()
		return fmt.Errorf("write syslog: %w", err)
	}
	return nil
}

func (s *syslogConn) close() {
	if s.c != nil {
		_ = s.c.Close()
		s.c = nil
	}
}

// line formats one RFC 5424 message; the explicit UTC timestamp avoids
// any time-zone guess on the server side. RFC 5424 allows at most six
// fractional digits.
func line(pri int, host, app string, pid int, msg string) string {
	return fmt.Sprintf("<%d>1 %s %s %s %d - - %s\n", pri, time.Now().UTC().Format("2006-01-02T15:04:05.000000Z07:00"), host, app, pid, msg)
}

// Priorities: facility auth(4)/authpriv(10)/cron(9)/daemon(3)/local7(23)
// times 8 plus severity.
const (
	priAuthInfo    = 4*8 + 6
	priAuthprivNot = 10*8 + 5
	priCronInfo    = 9*8 + 6
	priLocal7Info  = 23*8 + 6
)

func pick[T any](rng *rand.Rand, s []T) T { return s[rng.IntN(len(s))] }

// background is one ordinary line from a busy small shop's servers.
func (d *Demo) background(rng *rand.Rand) string {
	host := pick(rng, demoHosts)
	pid := 1000 + rng.IntN(30000)
	switch rng.IntN(6) {
	case 0:
		u, ip := pick(rng, staffUsers), pick(rng, staffIPs)
		return line(priAuthInfo, host, "sshd", pid, fmt.Sprintf("Accepted publickey for %s from %s port %d ssh2: ED25519 SHA256:q3Yx8mZ0demoKeyFingerprint", u, ip, 40000+rng.IntN(20000)))
	case 1:
		u := pick(rng, staffUsers[:2])
		return line(priAuthprivNot, host, "sudo", pid, fmt.Sprintf("   %s : TTY=pts/0 ; PWD=/home/%s ; USER=root ; COMMAND=%s", u, u, pick(rng, sudoCommand)))
	case 2:
		return line(priCronInfo, host, "CRON", pid, fmt.Sprintf("(root) CMD (%s)", pick(rng, cronJobs)))
	case 3:
		return line(priAuthInfo, host, "sshd", pid, fmt.Sprintf("Disconnected from user %s %s port %d", pick(rng, staffUsers), pick(rng, staffIPs), 40000+rng.IntN(20000)))
	default:
		status := 200
		if rng.IntN(20) == 0 {
			status = 304
		}
		return line(priLocal7Info, pick(rng, demoHosts[:2]), "nginx", pid, accessLine(pick(rng, webClients), "GET", pick(rng, webPaths), status, pick(rng, userAgents)))
	}
}

func accessLine(client, method, path string, status int, ua string) string {
	ts := time.Now().UTC().Format("02/Jan/2006:15:04:05 -0700")
	return fmt.Sprintf(`%s - - [%s] "%s %s HTTP/1.1" %d %d "-" "%s"`, client, ts, method, path, status, 512+len(path)*13, ua)
}

// attackerIP is the n-th brute-force source, in TEST-NET-3 (203.0.113.0/24).
func attackerIP(n int) string { return fmt.Sprintf("203.0.113.%d", 10+(n*37)%240) }

// scannerIP is the n-th scanner, in TEST-NET-2 (198.51.100.0/24).
func scannerIP(n int) string { return fmt.Sprintf("198.51.100.%d", 20+(n*53)%230) }

// bruteForce is a burst of 14 failed SSH logins from one source — above
// the built-in rule's 10 in 5 minutes — optionally followed by a success,
// which the "brute force followed by success" correlation catches.
func bruteForce(n int, success bool) []string {
	ip := attackerIP(n)
	var out []string
	for i := 0; i < 14; i++ {
		u := guessUsers[i%len(guessUsers)]
		port := 50000 + n*100 + i
		if u == "root" {
			out = append(out, line(priAuthInfo, "bastion", "sshd", 7000+i, fmt.Sprintf("Failed password for root from %s port %d ssh2", ip, port)))
		} else {
			out = append(out, line(priAuthInfo, "bastion", "sshd", 7000+i, fmt.Sprintf("Failed password for invalid user %s from %s port %d ssh2", u, ip, port)))
		}
	}
	if success {
		out = append(out, line(priAuthInfo, "bastion", "sshd", 7100, fmt.Sprintf("Accepted password for root from %s port %d ssh2", ip, 50099+n*100)))
	}
	return out
}

// webScan is 40 requests for well-known sensitive paths answered 404,
// above the built-in rule's 30 4xx per source in a minute.
func webScan(n int) []string {
	ip := scannerIP(n)
	var out []string
	for i := 0; i < 40; i++ {
		p := scanPaths[i%len(scanPaths)]
		if i >= len(scanPaths) {
			p = fmt.Sprintf("%s.%d", p, i/len(scanPaths))
		}
		out = append(out, line(priLocal7Info, "web1", "nginx", 900, accessLine(ip, "GET", p, 404, scannerUA)))
	}
	return out
}
