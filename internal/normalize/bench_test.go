package normalize

import (
	"syscall"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/event"
)

// benchLines is a realistic auth.log-heavy mix.
var benchSSHSudo = [][2]string{
	{"sshd", "Accepted publickey for deploy from 10.20.30.40 port 51234 ssh2: ED25519 SHA256:6nRmG0tq0ZfWbWqA8Hh3yVzQ0kH2i6m3N1cGk2Zr1bA"},
	{"sshd", "Failed password for invalid user admin from 198.51.100.23 port 42426 ssh2"},
	{"sshd", "Failed password for root from 198.51.100.23 port 42424 ssh2"},
	{"sshd", "Invalid user oracle from 192.0.2.44 port 33210"},
	{"sshd", "Connection closed by authenticating user root 192.0.2.44 port 33212 [preauth]"},
	{"sshd", "Received disconnect from 192.0.2.44 port 33210:11: Bye Bye [preauth]"},
	{"sshd", "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.23  user=root"},
	{"sudo", "alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update"},
	{"sudo", "tsg : user NOT in sudoers ; TTY=pts/1 ; PWD=/home/vagrant ; USER=root ; COMMAND=/bin/ls"},
	{"sudo", "pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)"},
}

var benchMixed = append(append([][2]string{}, benchSSHSudo...), [][2]string{
	{"CRON", "(root) CMD (   cd / && run-parts --report /etc/cron.hourly)"},
	{"CRON", "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"},
	{"kernel", "[UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=203.0.113.9 DST=192.0.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=49 ID=4321 DF PROTO=TCP SPT=51514 DPT=23 WINDOW=29200 RES=0x00 SYN URGP=0"},
	{"postfix/smtpd", "connect from unknown[192.0.2.99]"},
	{"postfix/smtp", "3F2A81C0A5B: to=<bob@example.com>, relay=mx.example.com[203.0.113.5]:25, delay=0.52, delays=0.05/0.01/0.2/0.26, dsn=2.0.0, status=sent (250 2.0.0 OK)"},
	{"nginx", `83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/logstash-monitorama-2013/images/kibana-search.png HTTP/1.1" 200 203023 "http://semicomplete.com/presentations/logstash-monitorama-2013/" "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/32.0.1700.77 Safari/537.36"`},
	{"useradd", "new user: name=bob, UID=1001, GID=1001, home=/home/bob, shell=/bin/bash, from=/dev/pts/0"},
	{"systemd", "Started Session 4 of user alice."},
}...)

// BenchmarkNormalize measures Normalize per event. Each iteration builds
// the event as the syslog input leaves it (4 fields in a map literal, which
// Normalize then grows), so the figure includes that map: "input_only"
// builds the map without normalizing, the baseline to subtract for
// Normalize's own cost.
func BenchmarkNormalize(b *testing.B) {
	for _, bc := range []struct {
		name      string
		lines     [][2]string
		normalize bool
		hint      int // >0: the input makes the map with room for this many fields
	}{{"ssh_sudo", benchSSHSudo, true, 0}, {"mixed", benchMixed, true, 0}, {"input_only", benchMixed, false, 0},
		{"ssh_sudo/map16", benchSSHSudo, true, 16}, {"input_only/map16", benchSSHSudo, false, 16}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			defer reportCPU(b)()
			i := 0
			for b.Loop() {
				l := bc.lines[i%len(bc.lines)]
				i++
				e := event.Event{Fields: map[string]any{
					"process.name": l[0], "message": l[1],
					"log.syslog.severity": "info", "log.syslog.facility": "authpriv",
				}}
				if bc.hint > 0 {
					e.Fields = make(map[string]any, bc.hint)
					e.Fields["process.name"] = l[0]
					e.Fields["message"] = l[1]
					e.Fields["log.syslog.severity"] = "info"
					e.Fields["log.syslog.facility"] = "authpriv"
				}
				if bc.normalize {
					Normalize(&e)
				}
			}
		})
	}
}

// BenchmarkNormalizeLineApache measures the access-log path over real lines.
func BenchmarkNormalizeLineApache(b *testing.B) {
	lines := readLines(b, "testdata/apache_access_head200.log")
	b.ReportAllocs()
	defer reportCPU(b)()
	i := 0
	for b.Loop() {
		e := event.Event{Raw: lines[i%len(lines)], Fields: make(map[string]any, 16)}
		i++
		NormalizeLine(&e, KindApacheAccess)
	}
}

// reportCPU adds the process's CPU time per operation (user+system, GC
// included) as "cpu-ns/op" and the events per CPU-second it implies. On the
// shared 2-core machine wall time per op swings with other people's load;
// CPU time per op does much less.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		if b.N == 0 {
			return
		}
		d := cpuTime() - start
		b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "cpu-ns/op")
		if d > 0 {
			b.ReportMetric(float64(b.N)/d.Seconds(), "events/cpu-s")
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
