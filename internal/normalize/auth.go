package normalize

import (
	"strings"

	"github.com/nocsoc/nocsoc/internal/event"
)

// parsePAMAny handles "pam_unix(service:type): …" from any program. It
// reports whether the message was a pam_unix line.
func parsePAMAny(e *event.Event, msg string) bool {
	rest, ok := strings.CutPrefix(msg, "pam_unix(")
	if !ok {
		return false
	}
	svc, rest, ok := strings.Cut(rest, "): ")
	if !ok {
		return false
	}
	service, _, _ := strings.Cut(svc, ":")
	e.Set("pam.service", service)
	switch {
	case strings.HasPrefix(rest, "session opened for user "):
		// "session opened for user root(uid=0) by alice(uid=1000)",
		// "session opened for user bob by (uid=0)".
		forPart, byPart, _ := strings.Cut(rest[len("session opened for user "):], " by ")
		forUser := pamName(forPart)
		byUser := pamName(byPart)
		e.Set(fCategory, catSession)
		e.Set(fAction, "session_opened")
		e.Set(fOutcome, success)
		// The "by" user acted; the "for" user is who the session runs as.
		if byUser != "" && byUser != forUser {
			e.Set(fUser, byUser)
			e.Set(fUserEff, forUser)
		} else {
			e.Set(fUser, forUser)
		}
	case strings.HasPrefix(rest, "session closed for user "):
		e.Set(fCategory, catSession)
		e.Set(fAction, "session_closed")
		e.Set(fUser, pamName(rest[len("session closed for user "):]))
	case strings.HasPrefix(rest, "authentication failure; "):
		e.Set(fCategory, catAuth)
		e.Set(fAction, "authentication_failure")
		e.Set(fOutcome, failure)
		pamKV(e, rest[len("authentication failure; "):])
	case strings.HasPrefix(rest, "check pass; user unknown"):
		e.Set(fCategory, catAuth)
		e.Set(fAction, "authentication_failure")
		e.Set(fOutcome, failure)
		e.Set(fUserInvalid, true)
	case strings.HasPrefix(rest, "auth could not identify password for ["):
		u := rest[len("auth could not identify password for ["):]
		e.Set(fCategory, catAuth)
		e.Set(fAction, "authentication_failure")
		e.Set(fOutcome, failure)
		e.Set(fUser, strings.TrimSuffix(u, "]"))
	case strings.HasPrefix(rest, "password changed for "):
		u := rest[len("password changed for "):]
		e.Set(fCategory, catIAM)
		e.Set(fAction, "password_changed")
		e.Set(fOutcome, success)
		e.Set(fUser, u)
		e.Set(fUserTarget, u)
	}
	return true
}

// pamName returns the user name before "(uid=…)"; "(uid=0)" alone gives "".
func pamName(s string) string {
	if i := strings.IndexByte(s, '('); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// pamKV reads "logname= uid=0 euid=0 tty=ssh ruser= rhost=1.2.3.4  user=root".
func pamKV(e *event.Event, s string) {
	var logname string
	var haveUser bool
	kvSpace(s, func(k, v string) {
		switch k {
		case "user":
			if v != "" {
				e.Set(fUser, v)
				haveUser = true
			}
		case "rhost":
			setAddr(e, fSrcIP, fSrcDomain, v)
		case "ruser":
			if v != "" {
				e.Set("pam.ruser", v)
			}
		case "tty":
			if v != "" {
				e.Set("pam.tty", v)
			}
		case "logname":
			logname = v
		}
	})
	if !haveUser && logname != "" {
		e.Set(fUser, logname)
	}
}

// parseSudo handles sudo's
// "U : [ERROR ; ]TTY=pts/0 ; PWD=/home/u ; USER=root ; COMMAND=/bin/ls".
func parseSudo(e *event.Event, msg string) bool {
	msg = strings.TrimLeft(msg, " ")
	user, rest, ok := strings.Cut(msg, " : ")
	if !ok || user == "" || strings.IndexByte(user, ' ') >= 0 {
		return false
	}
	var errText string
	for rest != "" {
		// COMMAND is last and may itself contain " ; ".
		if cmd, ok := strings.CutPrefix(rest, "COMMAND="); ok {
			e.Set(fCmdLine, cmd)
			exe, _, _ := strings.Cut(cmd, " ")
			e.Set("process.executable", exe)
			break
		}
		var seg string
		seg, rest, _ = strings.Cut(rest, " ; ")
		k, v, ok := strings.Cut(seg, "=")
		if !ok || strings.IndexByte(k, ' ') >= 0 {
			errText = seg
			continue
		}
		switch k {
		case "TTY":
			e.Set("sudo.tty", v)
		case "PWD":
			e.Set("process.working_directory", v)
		case "USER":
			e.Set(fUserEff, v)
		case "GROUP":
			e.Set("group.effective.name", v)
		}
	}
	e.Set(fUser, user)
	switch {
	case errText == "":
		e.Set(fCategory, catProcess)
		e.Set(fAction, "sudo_command")
		e.Set(fOutcome, success)
	case strings.Contains(errText, "incorrect password attempt"):
		e.Set(fCategory, catAuth)
		e.Set(fAction, "sudo_auth_failure")
		e.Set(fOutcome, failure)
		e.Set("sudo.error", errText)
	default:
		// "user NOT in sudoers", "command not allowed", "user NOT authorized
		// on host", "a password is required" …
		e.Set(fCategory, catAuth)
		e.Set(fAction, "sudo_denied")
		e.Set(fOutcome, failure)
		e.Set("sudo.error", errText)
	}
	return true
}

// parseSu handles util-linux su ("(to root) alice on pts/0",
// "FAILED SU (to root) alice on pts/0") and shadow su ("Successful su for
// root by alice", "FAILED su for root by alice", "+ pts/0 alice:root").
func parseSu(e *event.Event, msg string) bool {
	outcome := success
	rest := msg
	if r, ok := strings.CutPrefix(rest, "FAILED SU "); ok {
		outcome, rest = failure, r
	}
	var actor, target, tty string
	switch {
	case strings.HasPrefix(rest, "(to "):
		t, r, ok := strings.Cut(rest[len("(to "):], ") ")
		if !ok {
			return false
		}
		target = t
		actor, tty, _ = strings.Cut(r, " on ")
	case strings.HasPrefix(rest, "Successful su for "), strings.HasPrefix(rest, "FAILED su for "):
		if rest[0] == 'F' {
			outcome = failure
		}
		_, r, _ := strings.Cut(rest, " su for ")
		var ok bool
		target, actor, ok = strings.Cut(r, " by ")
		if !ok {
			return false
		}
	case len(rest) > 2 && (rest[0] == '+' || rest[0] == '-') && rest[1] == ' ':
		if rest[0] == '-' {
			outcome = failure
		}
		t, pair, ok := strings.Cut(rest[2:], " ")
		if !ok {
			return false
		}
		tty = t
		actor, target, ok = strings.Cut(pair, ":")
		if !ok {
			return false
		}
	default:
		return false
	}
	e.Set(fCategory, catAuth)
	e.Set(fAction, "su")
	e.Set(fOutcome, outcome)
	e.Set(fUser, actor)
	e.Set(fUserEff, target)
	if tty != "" {
		e.Set("su.tty", tty)
	}
	return true
}

// parseCron handles "(root) CMD (command)".
func parseCron(e *event.Event, msg string) bool {
	if len(msg) < 2 || msg[0] != '(' {
		return false
	}
	user, rest, ok := strings.Cut(msg[1:], ") ")
	if !ok {
		return false
	}
	cmd, ok := strings.CutPrefix(rest, "CMD (")
	if !ok {
		return false
	}
	e.Set(fCategory, catProcess)
	e.Set(fAction, "cron_command")
	e.Set(fUser, user)
	e.Set(fCmdLine, strings.TrimSuffix(cmd, ")"))
	return true
}

// parseAccount handles the shadow tools (useradd, usermod, userdel,
// groupadd, groupdel, passwd, chpasswd …). When the message names no actor,
// user.name is the affected account as well, so a search or pivot on the
// user finds it.
func parseAccount(e *event.Event, msg string) bool {
	set := func(action, outcome string) {
		e.Set(fCategory, catIAM)
		e.Set(fAction, action)
		e.Set(fOutcome, outcome)
	}
	target := func(u string) {
		e.Set(fUser, u)
		e.Set(fUserTarget, u)
	}
	switch {
	case strings.HasPrefix(msg, "new user: "):
		set("user_created", success)
		kvComma(msg[len("new user: "):], func(k, v string) {
			switch k {
			case "name":
				target(v)
			case "UID":
				e.Set("user.target.id", v)
			case "GID":
				e.Set("user.target.group.id", v)
			case "home":
				e.Set("useradd.home", v)
			case "shell":
				e.Set("useradd.shell", v)
			}
		})
	case strings.HasPrefix(msg, "new group: "), strings.HasPrefix(msg, "group added to "):
		_, kv, _ := strings.Cut(msg, ": ")
		set("group_created", success)
		groupKV(e, kv)
	case strings.HasPrefix(msg, "add '"), strings.HasPrefix(msg, "delete '"):
		// "add 'bob' to group 'sudo'", "delete 'bob' from shadow group 'sudo'"
		u, rest, _ := quoted(msg)
		g, _, ok := quoted(rest)
		if !ok {
			return false
		}
		if msg[0] == 'a' {
			set("user_added_to_group", success)
		} else {
			set("user_removed_from_group", success)
		}
		target(u)
		e.Set(fGroup, g)
	case strings.HasPrefix(msg, "delete user '"):
		u, _, ok := quoted(msg)
		if !ok {
			return false
		}
		set("user_deleted", success)
		target(u)
	case strings.HasPrefix(msg, "removed group '"), strings.HasPrefix(msg, "removed shadow group '"),
		strings.HasPrefix(msg, "group '") && strings.Contains(msg, "' removed"):
		g, _, ok := quoted(msg)
		if !ok {
			return false
		}
		set("group_deleted", success)
		e.Set(fGroup, g)
	case strings.HasPrefix(msg, "password for '"):
		// passwd: "password for 'bob' changed by 'root'"
		u, rest, ok := quoted(msg)
		if !ok {
			return false
		}
		set("password_changed", success)
		e.Set(fUserTarget, u)
		if by, _, ok := quoted(rest); ok {
			e.Set(fUser, by)
		} else {
			e.Set(fUser, u)
		}
	case strings.HasPrefix(msg, "change user '") && strings.HasSuffix(msg, "' password"),
		strings.HasPrefix(msg, "changed password for '"):
		u, _, ok := quoted(msg)
		if !ok {
			return false
		}
		set("password_changed", success)
		target(u)
	case strings.HasPrefix(msg, "change user "), strings.HasPrefix(msg, "lock user '"),
		strings.HasPrefix(msg, "unlock user '"):
		u, _, ok := quoted(msg)
		if !ok {
			return false
		}
		set("user_modified", success)
		target(u)
	case strings.HasPrefix(msg, "failed adding user '"):
		u, _, ok := quoted(msg)
		if !ok {
			return false
		}
		set("user_created", failure)
		target(u)
	default:
		return false
	}
	return true
}

func groupKV(e *event.Event, s string) {
	kvComma(s, func(k, v string) {
		switch k {
		case "name":
			e.Set(fGroup, v)
		case "GID":
			e.Set("group.id", v)
		}
	})
}

// kvComma calls fn for each "key=value" of "k=v, k=v, …".
func kvComma(s string, fn func(k, v string)) {
	for s != "" {
		var w string
		w, s, _ = strings.Cut(s, ", ")
		if k, v, ok := strings.Cut(w, "="); ok {
			fn(k, v)
		}
	}
}
