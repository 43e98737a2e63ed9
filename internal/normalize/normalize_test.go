package normalize

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/event"
)

// syslogEvent builds an event as the syslog input leaves it.
func syslogEvent(prog, msg string) *event.Event {
	return &event.Event{
		Input: "syslog-tcp",
		Host:  "web1",
		Raw:   "<38>Jan  2 03:04:05 web1 " + prog + ": " + msg,
		Fields: map[string]any{
			"process.name":        prog,
			"message":             msg,
			"log.syslog.severity": "info",
			"log.syslog.facility": "authpriv",
		},
	}
}

// checkFields reports fields that differ from want; a nil want value means
// the field must be absent.
func checkFields(t *testing.T, e *event.Event, want map[string]any) {
	t.Helper()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w := want[k]
		got, ok := e.Fields[k]
		if w == nil {
			if ok {
				t.Errorf("%s = %#v, want absent", k, got)
			}
			continue
		}
		if !ok {
			t.Errorf("%s missing, want %#v", k, w)
			continue
		}
		if got != w {
			t.Errorf("%s = %#v (%T), want %#v (%T)", k, got, got, w, w)
		}
	}
	for k, v := range e.Fields {
		switch v.(type) {
		case string, float64, bool, nil:
		default:
			t.Errorf("%s has type %T; event fields must be JSON types", k, v)
		}
	}
}

type fieldCase struct {
	name string
	prog string
	msg  string
	want map[string]any
}

func runCases(t *testing.T, cases []fieldCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := syslogEvent(tc.prog, tc.msg)
			raw := e.Raw
			Normalize(e)
			checkFields(t, e, tc.want)
			if e.Raw != raw || e.ParseError != "" {
				t.Errorf("Raw/ParseError changed: %q %q", e.Raw, e.ParseError)
			}
			if _, ok := e.Fields["message"]; !ok {
				t.Error("message dropped")
			}
		})
	}
}

func TestSSHD(t *testing.T) {
	runCases(t, []fieldCase{
		{"accepted password", "sshd", "Accepted password for alice from 203.0.113.7 port 51234 ssh2", map[string]any{
			"event.action": "ssh_login", "event.outcome": "success", "event.category": "authentication",
			"user.name": "alice", "source.ip": "203.0.113.7", "source.port": 51234.0, "ssh.method": "password",
			"event.dataset": "sshd", "event.module": "system", "user.invalid": nil,
		}},
		{"accepted publickey with key", "sshd", "Accepted publickey for deploy from 2001:db8::5 port 40022 ssh2: ED25519 SHA256:6nRmG0tq0ZfWbWqA8Hh3yVzQ0kH2i6m3N1cGk2Zr1bA", map[string]any{
			"event.action": "ssh_login", "event.outcome": "success", "user.name": "deploy",
			"source.ip": "2001:db8::5", "source.port": 40022.0, "ssh.method": "publickey",
		}},
		{"accepted keyboard-interactive, sshd-session", "sshd-session", "Accepted keyboard-interactive/pam for bob from 10.1.2.3 port 6000 ssh2", map[string]any{
			"event.action": "ssh_login", "ssh.method": "keyboard-interactive/pam", "user.name": "bob", "event.dataset": "sshd",
		}},
		{"failed password", "sshd", "Failed password for root from 198.51.100.23 port 42424 ssh2", map[string]any{
			"event.action": "ssh_login", "event.outcome": "failure", "user.name": "root",
			"source.ip": "198.51.100.23", "source.port": 42424.0, "user.invalid": nil,
		}},
		{"failed password invalid user", "sshd", "Failed password for invalid user admin from 198.51.100.23 port 42426 ssh2", map[string]any{
			"event.action": "ssh_login", "event.outcome": "failure", "user.name": "admin", "user.invalid": true,
			"source.ip": "198.51.100.23",
		}},
		{"failed none invalid user with spaces and from", "sshd", "Failed none for invalid user x from y from 198.51.100.9 port 1 ssh2", map[string]any{
			"user.name": "x from y", "source.ip": "198.51.100.9", "ssh.method": "none", "user.invalid": true,
		}},
		{"invalid user with port", "sshd", "Invalid user oracle from 192.0.2.44 port 33210", map[string]any{
			"event.action": "ssh_invalid_user", "event.outcome": "failure", "user.name": "oracle",
			"user.invalid": true, "source.ip": "192.0.2.44", "source.port": 33210.0,
		}},
		{"invalid user without port", "sshd", "Invalid user test from 10.0.2.2", map[string]any{
			"event.action": "ssh_invalid_user", "user.name": "test", "source.ip": "10.0.2.2", "source.port": nil,
		}},
		{"invalid empty user", "sshd", "Invalid user  from 192.0.2.44 port 33210", map[string]any{
			"event.action": "ssh_invalid_user", "user.name": "", "source.ip": "192.0.2.44",
		}},
		{"connection closed invalid user", "sshd", "Connection closed by invalid user admin 192.0.2.44 port 33210 [preauth]", map[string]any{
			"event.action": "ssh_disconnect", "user.name": "admin", "user.invalid": true,
			"source.ip": "192.0.2.44", "source.port": 33210.0,
		}},
		{"connection closed authenticating user", "sshd", "Connection closed by authenticating user root 192.0.2.44 port 33212 [preauth]", map[string]any{
			"event.action": "ssh_disconnect", "user.name": "root", "source.ip": "192.0.2.44",
		}},
		{"connection closed no user", "sshd", "Connection closed by 192.0.2.44 port 33214 [preauth]", map[string]any{
			"event.action": "ssh_disconnect", "user.name": nil, "source.ip": "192.0.2.44", "source.port": 33214.0,
		}},
		{"disconnected from user", "sshd", "Disconnected from user alice 203.0.113.7 port 51234", map[string]any{
			"event.action": "ssh_disconnect", "user.name": "alice", "source.ip": "203.0.113.7", "source.port": 51234.0,
		}},
		{"disconnected from invalid user", "sshd", "Disconnected from invalid user guest 192.0.2.50 port 5555 [preauth]", map[string]any{
			"event.action": "ssh_disconnect", "user.name": "guest", "user.invalid": true, "source.ip": "192.0.2.50",
		}},
		{"received disconnect", "sshd", "Received disconnect from 203.0.113.7 port 51234:11: disconnected by user", map[string]any{
			"event.action": "ssh_disconnect", "source.ip": "203.0.113.7", "source.port": 51234.0,
		}},
		{"received disconnect preauth", "sshd", "Received disconnect from 192.0.2.44 port 33210:11: Bye Bye [preauth]", map[string]any{
			"event.action": "ssh_disconnect", "source.ip": "192.0.2.44", "source.port": 33210.0,
		}},
		{"max auth attempts", "sshd", "error: maximum authentication attempts exceeded for invalid user pi from 192.0.2.60 port 40000 ssh2 [preauth]", map[string]any{
			"event.action": "ssh_max_auth_exceeded", "event.outcome": "failure", "user.name": "pi", "user.invalid": true,
			"source.ip": "192.0.2.60", "source.port": 40000.0,
		}},
		{"too many authentication failures", "sshd", "Disconnecting authenticating user root 192.0.2.61 port 40001: Too many authentication failures [preauth]", map[string]any{
			"event.action": "ssh_max_auth_exceeded", "event.outcome": "failure", "user.name": "root", "source.ip": "192.0.2.61", "source.port": 40001.0,
		}},
		{"pam auth failure via sshd", "sshd", "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.23  user=root", map[string]any{
			"event.action": "authentication_failure", "event.outcome": "failure", "event.category": "authentication",
			"user.name": "root", "source.ip": "198.51.100.23", "pam.service": "sshd", "pam.tty": "ssh", "event.dataset": "sshd",
		}},
		{"pam auth failure without user", "sshd", "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=host.example.net", map[string]any{
			"event.action": "authentication_failure", "user.name": nil, "source.domain": "host.example.net", "source.ip": nil,
		}},
		{"PAM more failures", "sshd", "PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.23  user=root", map[string]any{
			"event.action": "authentication_failure", "event.outcome": "failure", "user.name": "root",
			"source.ip": "198.51.100.23", "log.syslog.repeated": 2.0,
		}},
		{"pam session opened", "sshd", "pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)", map[string]any{
			"event.action": "session_opened", "event.category": "session", "user.name": "alice", "user.effective.name": nil,
		}},
		{"pam session closed", "sshd", "pam_unix(sshd:session): session closed for user alice", map[string]any{
			"event.action": "session_closed", "user.name": "alice",
		}},
		{"no identification", "sshd", "Did not receive identification string from 2.125.160.217", map[string]any{
			"event.action": "ssh_no_identification", "source.ip": "2.125.160.217",
		}},
		{"unable to negotiate", "sshd", "Unable to negotiate with 192.0.2.70 port 50000: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1 [preauth]", map[string]any{
			"event.action": "ssh_negotiation_failed", "event.outcome": "failure", "source.ip": "192.0.2.70", "source.port": 50000.0,
		}},
		{"repeated message", "sshd", "message repeated 5 times: [ Failed password for root from 198.51.100.23 port 42424 ssh2]", map[string]any{
			"event.action": "ssh_login", "event.outcome": "failure", "user.name": "root", "log.syslog.repeated": 5.0,
			"source.ip": "198.51.100.23",
		}},
		{"hostname instead of ip", "sshd", "Accepted publickey for alice from gw.example.org port 2222 ssh2", map[string]any{
			"source.ip": nil, "source.domain": "gw.example.org", "source.port": 2222.0,
		}},
		{"unknown sshd line", "sshd", "Server listening on 0.0.0.0 port 22.", map[string]any{
			"event.action": nil, "event.dataset": "sshd", "message": "Server listening on 0.0.0.0 port 22.",
		}},
		{"pid in program", "sshd[77]", "Accepted password for alice from 203.0.113.7 port 1 ssh2", map[string]any{
			"event.action": "ssh_login",
		}},
	})
}

func TestSudoSuCron(t *testing.T) {
	runCases(t, []fieldCase{
		{"sudo command", "sudo", "   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update", map[string]any{
			"event.action": "sudo_command", "event.outcome": "success", "event.category": "process",
			"user.name": "alice", "user.effective.name": "root", "process.command_line": "/usr/bin/apt update",
			"process.executable": "/usr/bin/apt", "process.working_directory": "/home/alice", "sudo.tty": "pts/0",
			"event.dataset": "sudo",
		}},
		{"sudo command containing semicolons", "sudo", "bob : TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/sh -c echo a ; echo b", map[string]any{
			"process.command_line": "/bin/sh -c echo a ; echo b", "user.name": "bob",
		}},
		{"sudo with group and env", "sudo", "carol : TTY=pts/2 ; PWD=/srv ; USER=www-data ; GROUP=www-data ; ENV=FOO=1 ; COMMAND=/usr/bin/id", map[string]any{
			"user.effective.name": "www-data", "group.effective.name": "www-data", "process.command_line": "/usr/bin/id",
		}},
		{"sudo not in sudoers", "sudo", "     tsg : user NOT in sudoers ; TTY=pts/1 ; PWD=/home/vagrant ; USER=root ; COMMAND=/bin/ls", map[string]any{
			"event.action": "sudo_denied", "event.outcome": "failure", "user.name": "tsg",
			"sudo.error": "user NOT in sudoers", "process.command_line": "/bin/ls", "user.effective.name": "root",
		}},
		{"sudo incorrect password", "sudo", "mallory : 3 incorrect password attempts ; TTY=pts/3 ; PWD=/tmp ; USER=root ; COMMAND=/bin/bash", map[string]any{
			"event.action": "sudo_auth_failure", "event.outcome": "failure", "event.category": "authentication",
			"user.name": "mallory", "process.command_line": "/bin/bash",
		}},
		{"sudo command not allowed", "sudo", "dave : command not allowed ; TTY=pts/0 ; PWD=/home/dave ; USER=root ; COMMAND=/usr/sbin/visudo", map[string]any{
			"event.action": "sudo_denied", "event.outcome": "failure",
		}},
		{"sudo pam session", "sudo", "pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)", map[string]any{
			"event.action": "session_opened", "user.name": "alice", "user.effective.name": "root", "pam.service": "sudo",
		}},
		{"sudo pam session old format", "sudo", "pam_unix(sudo:session): session opened for user root by alice(uid=1000)", map[string]any{
			"user.name": "alice", "user.effective.name": "root",
		}},
		{"sudo pam auth failure", "sudo", "pam_unix(sudo:auth): authentication failure; logname=mallory uid=1001 euid=0 tty=/dev/pts/3 ruser=mallory rhost=  user=mallory", map[string]any{
			"event.action": "authentication_failure", "event.outcome": "failure", "user.name": "mallory", "pam.ruser": "mallory",
			"source.ip": nil,
		}},
		{"sudo pam could not identify", "sudo", "pam_unix(sudo:auth): auth could not identify password for [eve]", map[string]any{
			"event.action": "authentication_failure", "user.name": "eve",
		}},
		{"su success", "su", "(to root) alice on pts/0", map[string]any{
			"event.action": "su", "event.outcome": "success", "user.name": "alice", "user.effective.name": "root", "su.tty": "pts/0",
			"event.dataset": "su",
		}},
		{"su failed", "su", "FAILED SU (to root) mallory on pts/4", map[string]any{
			"event.action": "su", "event.outcome": "failure", "user.name": "mallory", "user.effective.name": "root",
		}},
		{"su shadow success", "su", "Successful su for postgres by root", map[string]any{
			"event.action": "su", "event.outcome": "success", "user.name": "root", "user.effective.name": "postgres",
		}},
		{"su shadow plus", "su", "+ pts/1 alice:root", map[string]any{
			"event.outcome": "success", "user.name": "alice", "user.effective.name": "root", "su.tty": "pts/1",
		}},
		{"su shadow minus", "su", "- pts/1 mallory:root", map[string]any{
			"event.outcome": "failure", "user.name": "mallory",
		}},
		{"su pam auth failure", "su", "pam_unix(su:auth): authentication failure; logname=mallory uid=1001 euid=0 tty=/dev/pts/4 ruser=mallory rhost=  user=root", map[string]any{
			"event.action": "authentication_failure", "user.name": "root", "pam.service": "su", "event.dataset": "su",
		}},
		{"su pam session", "su", "pam_unix(su:session): session opened for user root(uid=0) by alice(uid=1000)", map[string]any{
			"event.action": "session_opened", "user.name": "alice", "user.effective.name": "root",
		}},
		{"cron command", "CRON", "(root) CMD (   cd / && run-parts --report /etc/cron.hourly)", map[string]any{
			"event.action": "cron_command", "event.category": "process", "user.name": "root",
			"process.command_line": "   cd / && run-parts --report /etc/cron.hourly", "event.dataset": "cron",
		}},
		{"cron nested parens", "cron", "(www-data) CMD (php /var/www/cron.php > /dev/null 2>&1 (x))", map[string]any{
			"user.name": "www-data", "process.command_line": "php /var/www/cron.php > /dev/null 2>&1 (x)",
		}},
		{"cron pam session", "CRON", "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)", map[string]any{
			"event.action": "session_opened", "user.name": "root", "pam.service": "cron",
		}},
		{"cron other", "CRON", "(CRON) info (No MTA installed, discarding output)", map[string]any{
			"event.action": nil, "event.dataset": "cron",
		}},
	})
}

func TestAccounts(t *testing.T) {
	runCases(t, []fieldCase{
		{"new user", "useradd", "new user: name=bob, UID=1001, GID=1001, home=/home/bob, shell=/bin/bash, from=/dev/pts/0", map[string]any{
			"event.category": "iam", "event.action": "user_created", "event.outcome": "success",
			"user.name": "bob", "user.target.name": "bob", "user.target.id": "1001", "user.target.group.id": "1001",
			"useradd.home": "/home/bob", "useradd.shell": "/bin/bash", "event.dataset": "useradd",
		}},
		{"new group by useradd", "useradd", "new group: name=bob, GID=1001", map[string]any{
			"event.action": "group_created", "group.name": "bob", "group.id": "1001",
		}},
		{"groupadd etc group", "groupadd", "group added to /etc/group: name=devs, GID=1002", map[string]any{
			"event.action": "group_created", "group.name": "devs", "group.id": "1002",
		}},
		{"groupadd gshadow", "groupadd", "group added to /etc/gshadow: name=devs", map[string]any{
			"event.action": "group_created", "group.name": "devs",
		}},
		{"usermod add to group", "usermod", "add 'bob' to group 'sudo'", map[string]any{
			"event.action": "user_added_to_group", "user.target.name": "bob", "group.name": "sudo",
		}},
		{"usermod add to shadow group", "usermod", "add 'bob' to shadow group 'sudo'", map[string]any{
			"event.action": "user_added_to_group", "user.target.name": "bob", "group.name": "sudo",
		}},
		{"usermod password", "usermod", "change user 'bob' password", map[string]any{
			"event.action": "password_changed", "user.target.name": "bob",
		}},
		{"usermod shell", "usermod", "change user 'bob' shell from '/bin/sh' to '/bin/bash'", map[string]any{
			"event.action": "user_modified", "user.target.name": "bob",
		}},
		{"usermod lock", "usermod", "lock user 'bob' password", map[string]any{
			"event.action": "user_modified", "user.target.name": "bob",
		}},
		{"userdel", "userdel", "delete user 'bob'", map[string]any{
			"event.action": "user_deleted", "user.target.name": "bob", "user.name": "bob",
		}},
		{"userdel group", "userdel", "removed group 'bob' owned by 'bob'", map[string]any{
			"event.action": "group_deleted", "group.name": "bob",
		}},
		{"userdel from group", "userdel", "delete 'bob' from group 'sudo'", map[string]any{
			"event.action": "user_removed_from_group", "user.target.name": "bob", "group.name": "sudo",
		}},
		{"groupdel", "groupdel", "group 'devs' removed", map[string]any{
			"event.action": "group_deleted", "group.name": "devs",
		}},
		{"passwd pam", "passwd", "pam_unix(passwd:chauthtok): password changed for bob", map[string]any{
			"event.action": "password_changed", "event.category": "iam", "user.target.name": "bob", "event.dataset": "passwd",
		}},
		{"passwd by root", "passwd", "password for 'bob' changed by 'root'", map[string]any{
			"event.action": "password_changed", "user.target.name": "bob", "user.name": "root",
		}},
		{"chpasswd pam", "chpasswd", "pam_unix(chpasswd:chauthtok): password changed for carol", map[string]any{
			"event.action": "password_changed", "user.target.name": "carol",
		}},
		{"useradd failed", "useradd", "failed adding user 'bob', data deleted", map[string]any{
			"event.action": "user_created", "event.outcome": "failure", "user.target.name": "bob",
		}},
	})
}

func TestFirewall(t *testing.T) {
	runCases(t, []fieldCase{
		{"ufw block", "kernel", "[UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=203.0.113.9 DST=192.0.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=49 ID=4321 DF PROTO=TCP SPT=51514 DPT=23 WINDOW=29200 RES=0x00 SYN URGP=0", map[string]any{
			"event.category": "network", "event.action": "firewall_block", "event.type": "denied", "rule.name": "UFW BLOCK",
			"source.ip": "203.0.113.9", "source.port": 51514.0, "destination.ip": "192.0.2.10", "destination.port": 23.0,
			"network.transport": "tcp", "observer.ingress.interface.name": "eth0", "observer.egress.interface.name": nil,
			"network.bytes": 60.0, "event.dataset": "firewall",
		}},
		{"ufw allow with uptime stamp", "kernel", "[ 5123.456789] [UFW ALLOW] IN=eth0 OUT= MAC=aa SRC=198.51.100.4 DST=192.0.2.10 LEN=52 PROTO=UDP SPT=5353 DPT=53 LEN=32", map[string]any{
			"event.action": "firewall_allow", "rule.name": "UFW ALLOW", "network.transport": "udp", "destination.port": 53.0,
		}},
		{"iptables custom prefix", "kernel", "IPTables-Dropped: IN=ens3 OUT= MAC=fa:16 SRC=192.0.2.200 DST=10.0.0.5 LEN=40 TOS=0x00 PREC=0x00 TTL=244 ID=54321 PROTO=TCP SPT=40000 DPT=3389 WINDOW=1024 RES=0x00 SYN URGP=0", map[string]any{
			"event.action": "firewall_block", "rule.name": "IPTables-Dropped:", "source.ip": "192.0.2.200", "destination.port": 3389.0,
		}},
		{"nftables forward log", "kernel", "nft fwd: IN=eth1 OUT=eth0 SRC=10.0.0.7 DST=203.0.113.80 LEN=84 PROTO=ICMP TYPE=8 CODE=0 ID=1 SEQ=1", map[string]any{
			"event.action": "firewall_log", "rule.name": "nft fwd:", "network.transport": "icmp",
			"observer.egress.interface.name": "eth0", "source.port": nil,
		}},
		{"ipv6", "kernel", "[UFW BLOCK] IN=eth0 OUT= MAC=33:33 SRC=fe80:0000:0000:0000:0000:0000:0000:0001 DST=ff02:0000:0000:0000:0000:0000:0000:0001 LEN=72 TC=0 HOPLIMIT=1 FLOWLBL=0 PROTO=UDP SPT=546 DPT=547 LEN=32", map[string]any{
			"source.ip": "fe80:0000:0000:0000:0000:0000:0000:0001", "destination.port": 547.0,
		}},
		{"other kernel line", "kernel", "[ 1.234] EXT4-fs (sda1): mounted filesystem", map[string]any{
			"event.action": nil, "event.dataset": nil,
		}},
		{"firewall without program", "", "[UFW BLOCK] IN=eth0 OUT= SRC=203.0.113.9 DST=192.0.2.10 PROTO=TCP SPT=1 DPT=2", map[string]any{
			"event.action": "firewall_block", "source.ip": "203.0.113.9",
		}},
	})
}

func TestPostfix(t *testing.T) {
	runCases(t, []fieldCase{
		{"connect", "postfix/smtpd", "connect from mail-ed1-f54.google.com[209.85.208.54]", map[string]any{
			"event.action": "mail_connect", "source.ip": "209.85.208.54", "source.domain": "mail-ed1-f54.google.com",
			"event.dataset": "postfix",
		}},
		{"connect unknown", "postfix/smtpd", "connect from unknown[192.0.2.99]", map[string]any{
			"event.action": "mail_connect", "source.ip": "192.0.2.99", "source.domain": nil,
		}},
		{"disconnect", "postfix/smtpd", "disconnect from unknown[192.0.2.99] ehlo=1 auth=0/1 quit=1 commands=2/3", map[string]any{
			"event.action": "mail_disconnect", "source.ip": "192.0.2.99",
		}},
		{"noqueue reject", "postfix/smtpd", "NOQUEUE: reject: RCPT from unknown[192.0.2.99]: 554 5.7.1 <victim@example.net>: Relay access denied; from=<spam@example.biz> to=<victim@example.net> proto=ESMTP helo=<spammer>", map[string]any{
			"event.action": "mail_rejected", "event.outcome": "failure", "source.ip": "192.0.2.99",
			"email.from.address": "spam@example.biz", "email.to.address": "victim@example.net",
			"error.message": "554 5.7.1 <victim@example.net>: Relay access denied", "postfix.helo": "spammer",
		}},
		{"queue client", "postfix/smtpd", "3F2A81C0A5B: client=mail.example.org[198.51.100.25]", map[string]any{
			"postfix.queue_id": "3F2A81C0A5B", "event.action": "mail_received", "source.ip": "198.51.100.25",
		}},
		{"qmgr from", "postfix/qmgr", "3F2A81C0A5B: from=<alice@example.org>, size=2345, nrcpt=1 (queue active)", map[string]any{
			"postfix.queue_id": "3F2A81C0A5B", "event.action": "mail_queued", "email.from.address": "alice@example.org",
			"postfix.size": 2345.0, "postfix.nrcpt": 1.0,
		}},
		{"smtp sent", "postfix/smtp", "3F2A81C0A5B: to=<bob@example.com>, relay=mx.example.com[203.0.113.5]:25, delay=0.52, delays=0.05/0.01/0.2/0.26, dsn=2.0.0, status=sent (250 2.0.0 OK 1700000000 x12si)", map[string]any{
			"event.action": "mail_delivered", "event.outcome": "success", "email.to.address": "bob@example.com",
			"postfix.status": "sent", "postfix.dsn": "2.0.0", "destination.ip": "203.0.113.5", "destination.domain": "mx.example.com",
			"postfix.status_detail": "250 2.0.0 OK 1700000000 x12si",
		}},
		{"smtp deferred", "postfix/smtp", "4B1C2D3E4F: to=<x@example.invalid>, relay=none, delay=30, delays=0.1/0/30/0, dsn=4.4.1, status=deferred (connect to example.invalid[192.0.2.1]:25: Connection timed out)", map[string]any{
			"event.action": "mail_deferred", "event.outcome": "failure", "postfix.status": "deferred",
		}},
		{"local bounced", "postfix/local", "4B1C2D3E4F: to=<nobody@localhost>, relay=local, delay=0.1, dsn=5.1.1, status=bounced (unknown user: \"nobody\")", map[string]any{
			"event.action": "mail_bounced", "event.outcome": "failure",
		}},
		{"removed", "postfix/qmgr", "4B1C2D3E4F: removed", map[string]any{
			"event.action": "mail_removed", "postfix.queue_id": "4B1C2D3E4F",
		}},
		{"sasl failed", "postfix/smtpd", "warning: unknown[192.0.2.77]: SASL LOGIN authentication failed: UGFzc3dvcmQ6", map[string]any{
			"event.action": "mail_auth_failed", "event.outcome": "failure", "event.category": "authentication",
			"source.ip": "192.0.2.77", "postfix.sasl_method": "LOGIN",
		}},
		{"long queue id", "postfix/cleanup", "4Lk1mR2Z3qz9sXb: message-id=<20240102030405.1234@example.org>", map[string]any{
			"postfix.queue_id": "4Lk1mR2Z3qz9sXb", "email.message_id": "20240102030405.1234@example.org",
		}},
		{"anvil statistics is no queue id", "postfix/anvil", "statistics: max connection rate 1/60s for (smtp:192.0.2.9) at Jan  2 03:04:05", map[string]any{
			"postfix.queue_id": nil, "event.action": nil, "event.dataset": "postfix",
		}},
		{"other warning", "postfix/smtpd", "warning: hostname foo does not resolve to address 192.0.2.5", map[string]any{
			"event.action": nil,
		}},
	})
}

func TestWebViaSyslog(t *testing.T) {
	runCases(t, []fieldCase{
		{"nginx access", "nginx", `203.0.113.7 - - [02/Jan/2024:03:04:05 +0100] "GET /login.php?user=admin HTTP/1.1" 404 153 "-" "sqlmap/1.7"`, map[string]any{
			"event.dataset": "nginx.access", "event.category": "web", "event.outcome": "failure",
			"source.ip": "203.0.113.7", "http.request.method": "GET", "url.path": "/login.php", "url.query": "user=admin",
			"http.version": "1.1", "http.response.status_code": 404.0, "http.response.body.bytes": 153.0,
			"user_agent.original": "sqlmap/1.7", "http.request.referrer": nil,
		}},
		{"nginx error", "nginx", `2024/01/02 03:04:05 [error] 1234#1234: *56 open() "/var/www/html/wp-login.php" failed (2: No such file or directory), client: 203.0.113.7, server: example.org, request: "GET /wp-login.php HTTP/1.1", host: "example.org"`, map[string]any{
			"event.dataset": "nginx.error", "log.level": "error", "process.pid": 1234.0, "source.ip": "203.0.113.7",
			"message":             `open() "/var/www/html/wp-login.php" failed (2: No such file or directory)`,
			"http.request.method": "GET", "url.path": "/wp-login.php", "url.domain": "example.org",
		}},
		{"apache error", "apache2", `[proxy_fcgi:error] [pid 4567:tid 140000] [client 198.51.100.2:55000] AH01071: Got error 'Primary script unknown'`, map[string]any{
			"event.dataset": "apache.error", "log.level": "error", "source.ip": "198.51.100.2", "source.port": 55000.0,
			"error.code": "AH01071", "apache.module": "proxy_fcgi",
		}},
	})
}

func TestNormalizeLine(t *testing.T) {
	cases := []struct {
		name     string
		kind     string
		line     string
		want     map[string]any
		wantTime string
		wantErr  bool
	}{
		{"apache combined", KindApacheAccess, `83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/logstash-monitorama-2013/images/kibana-search.png HTTP/1.1" 200 203023 "http://semicomplete.com/presentations/logstash-monitorama-2013/" "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/32.0.1700.77 Safari/537.36"`, map[string]any{
			"event.dataset": "apache.access", "source.ip": "83.149.9.216", "http.request.method": "GET",
			"url.path": "/presentations/logstash-monitorama-2013/images/kibana-search.png", "url.query": nil,
			"http.response.status_code": 200.0, "http.response.body.bytes": 203023.0, "event.outcome": "success",
			"http.request.referrer": "http://semicomplete.com/presentations/logstash-monitorama-2013/",
			"user_agent.original":   "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/32.0.1700.77 Safari/537.36",
		}, "2015-05-17T10:05:03Z", false},
		{"common format with user and dash bytes", KindNginxAccess, `10.0.0.5 - alice [02/Jan/2024:03:04:05 -0500] "POST /api/x HTTP/2.0" 304 -`, map[string]any{
			"event.dataset": "nginx.access", "user.name": "alice", "http.version": "2.0", "http.response.body.bytes": 0.0,
			"user_agent.original": nil,
		}, "2024-01-02T08:04:05Z", false},
		{"vhost prefix with port", KindApacheAccess, `www.example.org:443 2001:db8::7 - - [02/Jan/2024:03:04:05 +0000] "GET / HTTP/1.1" 200 512 "-" "curl/8.5.0"`, map[string]any{
			"url.domain": "www.example.org", "destination.port": 443.0, "source.ip": "2001:db8::7", "url.path": "/",
		}, "2024-01-02T03:04:05Z", false},
		{"escaped quotes and garbage request", KindNginxAccess, `192.0.2.1 - - [02/Jan/2024:03:04:05 +0000] "\x16\x03\x01\x00\xF7\x01" 400 157 "-" "a \"quoted\" agent"`, map[string]any{
			"url.original": `\x16\x03\x01\x00\xF7\x01`, "http.request.method": nil, "user_agent.original": `a \"quoted\" agent`,
			"http.response.status_code": 400.0, "event.outcome": "failure",
		}, "2024-01-02T03:04:05Z", false},
		{"nginx error line", KindNginxError, `2024/01/02 03:04:05 [crit] 99#99: *7 SSL_do_handshake() failed, client: 192.0.2.8, server: 0.0.0.0:443`, map[string]any{
			"log.level": "crit", "source.ip": "192.0.2.8", "message": "SSL_do_handshake() failed", "nginx.server_name": "0.0.0.0:443",
		}, "2024-01-02T03:04:05Z", false},
		{"apache 2.4 error line", KindApacheError, `[Tue Jan 02 03:04:05.123456 2024] [core:error] [pid 123] [client 203.0.113.7:51234] AH00126: Invalid URI in request GET /%2e%2e/etc/passwd HTTP/1.1`, map[string]any{
			"event.dataset": "apache.error", "log.level": "error", "apache.module": "core", "process.pid": 123.0,
			"source.ip": "203.0.113.7", "source.port": 51234.0, "error.code": "AH00126",
			"message": "AH00126: Invalid URI in request GET /%2e%2e/etc/passwd HTTP/1.1",
		}, "2024-01-02T03:04:05.123456Z", false},
		{"apache 2.2 error line", KindApacheError, `[Tue Jan 02 03:04:05 2024] [error] [client 203.0.113.7] File does not exist: /var/www/favicon.ico`, map[string]any{
			"log.level": "error", "source.ip": "203.0.113.7", "message": "File does not exist: /var/www/favicon.ico",
		}, "2024-01-02T03:04:05Z", false},
		{"auto access", KindAuto, `198.51.100.3 - - [02/Jan/2024:03:04:05 +0000] "HEAD / HTTP/1.0" 200 0`, map[string]any{
			"event.dataset": "web.access", "http.request.method": "HEAD",
		}, "2024-01-02T03:04:05Z", false},
		{"auto nginx error", KindAuto, `2024/01/02 03:04:05 [warn] 1#1: conflicting server name`, map[string]any{
			"event.dataset": "nginx.error", "log.level": "warn",
		}, "2024-01-02T03:04:05Z", false},
		{"wrong kind flags parse error", KindNginxAccess, `this is not an access log line`, map[string]any{
			"message": "this is not an access log line", "event.category": nil,
		}, "", true},
		{"bad time flags parse error", KindApacheAccess, `1.2.3.4 - - [32/Foo/2015:10:05:03 +0000] "GET / HTTP/1.1" 200 1`, map[string]any{
			"event.category": nil, "source.ip": nil,
		}, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := &event.Event{Input: "file", Raw: tc.line}
			NormalizeLine(e, tc.kind)
			checkFields(t, e, tc.want)
			if (e.ParseError != "") != tc.wantErr {
				t.Errorf("ParseError = %q, want error %v", e.ParseError, tc.wantErr)
			}
			if tc.wantErr && !strings.Contains(e.ParseError, tc.kind) {
				t.Errorf("ParseError %q does not name the kind %q", e.ParseError, tc.kind)
			}
			if _, ok := e.Fields["message"]; !ok {
				t.Error("message not set from Raw")
			}
			gotTime := ""
			if !e.Time.IsZero() {
				gotTime = e.Time.UTC().Format(time.RFC3339Nano)
			}
			if gotTime != tc.wantTime {
				t.Errorf("Time = %q, want %q", gotTime, tc.wantTime)
			}
		})
	}
}

// TestUnknownUntouched checks that messages no parser knows keep exactly
// the fields the input set.
func TestUnknownUntouched(t *testing.T) {
	for _, tc := range []struct{ prog, msg string }{
		{"systemd", "Started Session 4 of user alice."},
		{"dhclient", "DHCPACK of 10.0.0.5 from 10.0.0.1"},
		{"", "just a line [with brackets] and \"quotes\""},
		{"myapp", "[02/Jan/2024:03:04:05 +0000] no client here"},
	} {
		e := syslogEvent(tc.prog, tc.msg)
		Normalize(e)
		if len(e.Fields) != 4 || e.Fields["message"] != tc.msg {
			t.Errorf("%s %q: fields changed: %v", tc.prog, tc.msg, e.Fields)
		}
	}
	// Nil event and events without fields are ignored.
	Normalize(nil)
	NormalizeLine(nil, KindAuto)
	e := &event.Event{}
	Normalize(e)
	NormalizeLine(e, KindAuto)
	if e.Fields != nil {
		t.Errorf("empty event got fields %v", e.Fields)
	}
}

// TestInputDatasetKept checks that a dataset set by the input wins.
func TestInputDatasetKept(t *testing.T) {
	e := syslogEvent("sshd", "Accepted password for a from 192.0.2.1 port 1 ssh2")
	e.Fields["event.dataset"] = "bastion"
	Normalize(e)
	if e.Fields["event.dataset"] != "bastion" {
		t.Errorf("event.dataset = %v", e.Fields["event.dataset"])
	}
}

// splitBSD splits an RFC 3164 line "Mon dd hh:mm:ss host prog[pid]: msg" as
// the syslog input would.
func splitBSD(line string) (prog, msg string, err error) {
	if len(line) < 16 {
		return "", "", fmt.Errorf("short line")
	}
	rest := line[16:]
	_, rest, ok := strings.Cut(rest, " ") // host
	if !ok {
		return "", "", fmt.Errorf("no host")
	}
	tag, msg, ok := strings.Cut(rest, ": ")
	if !ok {
		return "", "", fmt.Errorf("no tag")
	}
	prog, _, _ = strings.Cut(tag, "[")
	return prog, msg, nil
}

// TestBeatsAuthLog runs the real auth.log lines from Elastic's beats tests.
func TestBeatsAuthLog(t *testing.T) {
	lines := readLines(t, "testdata/beats_system_auth.log")
	want := []map[string]any{
		{"event.action": "ssh_login", "event.outcome": "success", "user.name": "vagrant", "source.ip": "10.0.2.2", "source.port": 63673.0, "ssh.method": "publickey"},
		{"event.action": "ssh_login", "event.outcome": "success", "user.name": "vagrant", "source.ip": "192.168.33.1", "source.port": 58803.0, "ssh.method": "password"},
		{"event.action": "ssh_invalid_user", "user.name": "test", "source.ip": "10.0.2.2"},
		{"event.action": "ssh_login", "event.outcome": "failure", "user.name": "root", "source.ip": "216.160.83.57", "source.port": 29160.0},
		{"event.action": "sudo_command", "user.name": "vagrant", "user.effective.name": "root", "process.command_line": "/bin/ls"},
		{"event.action": "ssh_no_identification", "source.ip": "2.125.160.217"},
		{"event.action": "sudo_command", "user.name": "vagrant", "process.command_line": "/bin/cat /var/log/secure", "sudo.tty": "pts/1"},
		{"event.action": "sudo_denied", "event.outcome": "failure", "user.name": "tsg", "sudo.error": "user NOT in sudoers"},
		{"event.action": "group_created", "group.name": "apache", "group.id": "48"},
		{"event.action": "user_created", "user.target.name": "apache", "user.target.id": "48", "useradd.home": "/usr/share/httpd", "useradd.shell": "/sbin/nologin"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d", len(lines), len(want))
	}
	for i, line := range lines {
		prog, msg, err := splitBSD(line)
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		e := syslogEvent(prog, msg)
		Normalize(e)
		t.Run(fmt.Sprintf("line%d", i+1), func(t *testing.T) { checkFields(t, e, want[i]) })
	}
}

func TestValidKind(t *testing.T) {
	for _, tc := range []struct {
		kind string
		want bool
	}{{"auto", true}, {"nginx-access", true}, {"apache-access", true}, {"nginx-error", true},
		{"apache-error", true}, {"", false}, {"nginx", false}, {"Apache-Access", false}} {
		if got := ValidKind(tc.kind); got != tc.want {
			t.Errorf("ValidKind(%q) = %v, want %v", tc.kind, got, tc.want)
		}
	}
}

// TestAutoFallsBackToNormalize: "auto" on a syslog-style event that is no
// web line still gets the program parsers.
func TestAutoFallsBackToNormalize(t *testing.T) {
	e := syslogEvent("sshd", "Failed password for root from 192.0.2.1 port 22 ssh2")
	NormalizeLine(e, KindAuto)
	checkFields(t, e, map[string]any{"event.action": "ssh_login", "event.outcome": "failure"})
	if e.ParseError != "" {
		t.Errorf("ParseError = %q", e.ParseError)
	}
}
