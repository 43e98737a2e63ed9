package normalize

import (
	"testing"

	"github.com/nocsoc/nocsoc/internal/event"
)

// FuzzNormalize feeds arbitrary program/message pairs through every entry
// point: nothing may panic, the message must survive and every field value
// must be a JSON type.
func FuzzNormalize(f *testing.F) {
	seeds := [][2]string{
		{"sshd", "Accepted password for alice from 203.0.113.7 port 51234 ssh2"},
		{"sshd", "Failed password for invalid user a from b from 1.2.3.4 port 1 ssh2"},
		{"sshd", "Connection closed by authenticating user root 192.0.2.44 port 33212 [preauth]"},
		{"sshd", "message repeated 3 times: [ Invalid user x from 1.2.3.4]"},
		{"sudo", "alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/ls"},
		{"sudo", "pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)"},
		{"su", "FAILED SU (to root) bob on pts/0"},
		{"CRON", "(root) CMD (true)"},
		{"useradd", "new user: name=bob, UID=1001, GID=1001, home=/home/bob, shell=/bin/bash"},
		{"usermod", "add 'bob' to group 'sudo'"},
		{"kernel", "[ 1.2] [UFW BLOCK] IN=eth0 OUT= SRC=1.2.3.4 DST=5.6.7.8 PROTO=TCP SPT=1 DPT=2"},
		{"postfix/smtpd", "NOQUEUE: reject: RCPT from unknown[1.2.3.4]: 554 x; from=<a@b> to=<c@d>"},
		{"postfix/smtp", "ABCDE1: to=<a@b>, relay=x[1.2.3.4]:25, status=sent (ok)"},
		{"nginx", `1.2.3.4 - - [02/Jan/2024:03:04:05 +0000] "GET / HTTP/1.1" 200 1 "-" "x"`},
		{"nginx", `2024/01/02 03:04:05 [error] 1#1: *1 x, client: 1.2.3.4, request: "GET / HTTP/1.1"`},
		{"apache2", `[Tue Jan 02 03:04:05 2024] [error] [client 1.2.3.4] x`},
		{"", `[`},
		{"kernel", "IN="},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	kinds := []string{KindAuto, KindNginxAccess, KindApacheAccess, KindNginxError, KindApacheError}
	f.Fuzz(func(t *testing.T, prog, msg string) {
		e := &event.Event{Raw: msg, Fields: map[string]any{"process.name": prog, "message": msg}}
		Normalize(e)
		check(t, e)
		for _, k := range kinds {
			e := &event.Event{Raw: msg}
			NormalizeLine(e, k)
			check(t, e)
		}
	})
}

func check(t *testing.T, e *event.Event) {
	t.Helper()
	if e.Raw != "" {
		if _, ok := e.Fields["message"]; !ok {
			t.Fatalf("message lost for %q", e.Raw)
		}
	}
	for k, v := range e.Fields {
		switch v.(type) {
		case string, float64, bool, nil:
		default:
			t.Fatalf("%s has type %T", k, v)
		}
	}
}
