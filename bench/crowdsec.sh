#!/usr/bin/env bash
# The same SSH brute-force log through CrowdSec (replay mode) and through
# nocsoc's pipeline (file input -> parse -> normalize -> store -> detect with
# the built-in rules), in the same run. Prints lines/s and CPU of both and the
# brute-force alerts each raised.
#
# The log: the SOC benchmark's mixed stream (`nocsoc loadgen syslog --file`,
# LINES lines, event timestamps 10 us apart starting now), with the
# "<PRI>" prefix removed so it is what rsyslog writes to /var/log/*.log:
# CrowdSec's syslog-logs parser anchors its pattern at the start of the line
# ("^%{SYSLOGLINE}") and parses nothing of a line that starts with <PRI>;
# nocsoc's syslog file input reads both forms. Both read the same file.
#
# CrowdSec: the Debian package (tried: 1.4.6-6~deb12u1+b1, bookworm), never
# installed: installing it with apt-get ran a postinst that failed and left
# dpkg broken. The
# script runs `apt-get download crowdsec` (after `apt-get update` if that
# fails) into CS_CACHE and unpacks it with `dpkg-deb -x`; the binaries, hub,
# patterns and profiles are used from there (the binary needs libsqlite3-0).
# Nothing system-wide is read or changed. Per parser_routines setting
# (ROUTINES, default "1 2"; 1 is the package default) in a fresh temp dir:
#   - config.yaml with the parsers s00-raw/syslog-logs, s01-parse/sshd-logs,
#     s02-enrich/dateparse-enrich and the scenarios file ssh-bf.yaml
#     (crowdsecurity/ssh-bf and ssh-bf_user-enum) copied from the package's
#     offline hub; the package's profiles.yaml (4h ban per alert); a SQLite
#     db (WAL) in the temp dir; no Central API, no prometheus;
#   - `cscli machines add bench --password <random> -f CREDS`;
#   - the local API alone: `crowdsec -c CONF -no-cs -no-capi` on
#     127.0.0.1:CS_PORT;
#   - startup cost: `crowdsec -c CONF -dsn file://EMPTY -type syslog -no-api`
#     (loading the grok library and parsers dominates);
#   - the replay: `crowdsec -c CONF -dsn file://LOG -type syslog -no-api`
#     (time-machine mode: buckets use the lines' timestamps; the process
#     exits when the file is processed and its alerts are pushed);
#   - the ssh-bf overflows the agent raised, from its info log ("Ip X
#     performed 'crowdsecurity/ssh-bf' ..."), and what the LAPI stored:
#     `cscli alerts list -l 0 -o raw` and `cscli decisions list -l 0 -o raw`
#     (decisions: active ones, one per IP). 1.4's LAPI can lose alerts under
#     concurrent pushes ("database is locked", "already connected to a
#     different alert_events"; reworked in 1.5, crowdsec PR 2446); the
#     replay's push errors are counted. max_open_conns: 1 did not avoid it.
# lines_per_s is LINES / replay wall time; _excl_startup subtracts the empty
# replay's wall (or CPU) time. nocsoc's figures exclude its startup too (the
# server runs before the file appears; timed until
# nocsoc_ingest_events_total reaches LINES; its alerts are counted once their
# number is stable for 2s). nocsoc runs first, right after the log is
# written: its correlation windows use event time but a 15s wall-clock tick
# prunes groups whose last event is older than the timespan (5m) before now,
# so on a log older than 5 minutes it raises only some of the brute-force
# alerts. CrowdSec's replay does not depend on the wall clock.
#
# "expected" alerts come from the log itself: source IPs with >= 6 failed
# logins (what CrowdSec's ssh-bf leaky bucket, capacity 5 / leak 10s, needs
# within the log's few seconds of event time) and >= 10 (nocsoc's built-in
# "SSH Brute Force": 10 failures from one source in 5 minutes).
#
# Usage: bench/crowdsec.sh
#   env: LINES=1000000 ROUTINES="1 2" BUILD=1 BIN=/tmp/nocsoc-soc
#        PORT=19980 (nocsoc) CS_PORT=19981 (CrowdSec LAPI)
#        CS_CACHE=/tmp/crowdsec-cache (downloaded .deb and its unpacked tree)
# Loopback only (apart from apt-get fetching the package when not cached).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. bench/alerts-lib.sh
. bench/soc-lib.sh

LINES=${LINES:-1000000}
ROUTINES=${ROUTINES:-1 2}
PORT=${PORT:-19980}
CS_PORT=${CS_PORT:-19981}
BIN=${BIN:-/tmp/nocsoc-soc}
CS_CACHE=${CS_CACHE:-/tmp/crowdsec-cache}
WORK=$(mktemp -d /tmp/nocsoc-crowdsec.XXXXXX)
HZ=$(getconf CLK_TCK)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
	echo "crowdsec.sh: $*" >&2
	exit 1
}

# fetch_crowdsec: sets CSROOT to the unpacked package (downloaded and
# unpacked into CS_CACHE on first use; never installed).
fetch_crowdsec() {
	CSROOT=$CS_CACHE/root
	[ -x "$CSROOT/usr/bin/crowdsec" ] && [ -x "$CSROOT/usr/bin/cscli" ] && return 0
	mkdir -p "$CS_CACHE"
	local deb
	deb=$(ls -t "$CS_CACHE"/crowdsec_*.deb 2>/dev/null | head -1 || true)
	if [ -z "$deb" ]; then
		command -v apt-get >/dev/null || die "no crowdsec_*.deb in $CS_CACHE and no apt-get to download one"
		echo "downloading the Debian crowdsec package into $CS_CACHE (apt-get download; not installed)"
		if ! (cd "$CS_CACHE" && apt-get download crowdsec) >"$CS_CACHE/apt.log" 2>&1; then
			{ apt-get update && (cd "$CS_CACHE" && apt-get download crowdsec); } >>"$CS_CACHE/apt.log" 2>&1 ||
				{ tail -5 "$CS_CACHE/apt.log" >&2; die "apt-get download crowdsec failed (log: $CS_CACHE/apt.log)"; }
		fi
		deb=$(ls -t "$CS_CACHE"/crowdsec_*.deb 2>/dev/null | head -1 || true)
		[ -n "$deb" ] || die "apt-get download crowdsec left no crowdsec_*.deb in $CS_CACHE"
	fi
	rm -rf "$CSROOT.tmp"
	dpkg-deb -x "$deb" "$CSROOT.tmp" || die "dpkg-deb -x $deb failed"
	[ -x "$CSROOT.tmp/usr/bin/crowdsec" ] || die "$deb has no usr/bin/crowdsec"
	rm -rf "$CSROOT"
	mv "$CSROOT.tmp" "$CSROOT"
}

# cs_setup DIR ROUTINES: a private CrowdSec config in DIR (see the header).
cs_setup() {
	local d=$1 routines=$2 hub=$CSROOT/usr/share/crowdsec/hub pw
	mkdir -p "$d/etc/parsers/s00-raw" "$d/etc/parsers/s01-parse" "$d/etc/parsers/s02-enrich" "$d/etc/scenarios" "$d/data"
	cp "$hub/parsers/s00-raw/crowdsecurity/syslog-logs.yaml" "$d/etc/parsers/s00-raw/"
	cp "$hub/parsers/s01-parse/crowdsecurity/sshd-logs.yaml" "$d/etc/parsers/s01-parse/"
	cp "$hub/parsers/s02-enrich/crowdsecurity/dateparse-enrich.yaml" "$d/etc/parsers/s02-enrich/"
	cp "$hub/scenarios/crowdsecurity/ssh-bf.yaml" "$d/etc/scenarios/"
	cp -r "$CSROOT/etc/crowdsec/patterns" "$d/etc/"
	cp "$CSROOT/etc/crowdsec/profiles.yaml" "$d/etc/"
	: >"$d/etc/simulation.yaml"
	: >"$d/etc/acquis.yaml"
	cat >"$d/config.yaml" <<YAML
common:
  daemonize: false
  log_media: stdout
  log_level: info
config_paths:
  config_dir: $d/etc/
  data_dir: $d/data/
  simulation_path: $d/etc/simulation.yaml
  hub_dir: $hub/
  index_path: $hub/.index.json
  notification_dir: $d/etc/notifications/
  plugin_dir: $CSROOT/usr/lib/crowdsec/plugins/
crowdsec_service:
  acquisition_path: $d/etc/acquis.yaml
  parser_routines: $routines
cscli:
  output: human
  color: no
db_config:
  log_level: warning
  type: sqlite
  db_path: $d/data/crowdsec.db
  use_wal: true
  flush:
    max_items: 5000
    max_age: 7d
api:
  client:
    insecure_skip_verify: false
    credentials_path: $d/etc/local_api_credentials.yaml
  server:
    log_level: warning
    listen_uri: 127.0.0.1:$CS_PORT
    profiles_path: $d/etc/profiles.yaml
    trusted_ips:
      - 127.0.0.1
prometheus:
  enabled: false
YAML
	pw=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
	"$CSROOT/usr/bin/cscli" -c "$d/config.yaml" machines add bench --password "$pw" \
		-f "$d/etc/local_api_credentials.yaml" >"$d/cscli-machines.log" 2>&1 ||
		{ grep -v password "$d/cscli-machines.log" | tail -3 >&2; die "cscli machines add failed"; }
}

# timed OUT CMD...: runs CMD (stdout and stderr to OUT); sets T_RC, T_WALL,
# T_CPU (user+system seconds, exact: the shell's rusage of the child) and
# T_HWM_MB (VmHWM, polled every 0.1s).
timed() {
	local out=$1 poller
	shift
	rm -f "$out.pid" "$out.hwm"
	(
		for _ in $(seq 600); do [ -s "$out.pid" ] && break; sleep 0.05; done
		p=$(cat "$out.pid" 2>/dev/null) || exit 0
		while [ -d "/proc/$p" ]; do
			v=$(status_kb "$p" VmHWM 2>/dev/null || true)
			[ -n "$v" ] && echo "$v" >"$out.hwm"
			sleep 0.1
		done
	) &
	poller=$!
	local TIMEFORMAT='%R %U %S'
	T_RC=0
	{ time sh -c 'echo $$ >"$0"; exec "$@"' "$out.pid" "$@" >"$out" 2>&1; } 2>"$out.time" || T_RC=$?
	wait "$poller" 2>/dev/null || true
	read -r T_WALL u s <"$out.time"
	T_CPU=$(awk -v u="$u" -v s="$s" 'BEGIN{printf "%.2f", u+s}')
	T_HWM_MB=$(($(cat "$out.hwm" 2>/dev/null || echo 0) / 1024))
}

# rate N SECONDS: N/SECONDS rounded, or "n/a" when SECONDS <= 0.
rate() { awk -v n="$1" -v s="$2" 'BEGIN{if (s > 0) printf "%.0f", n/s; else printf "n/a"}'; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a-b}'; }

machine
if [ "${BUILD:-1}" = 1 ]; then go build -o "$BIN" ./cmd/nocsoc; fi
[ -x "$BIN" ] || die "no nocsoc binary at $BIN (BUILD=1 builds it)"
fetch_crowdsec
if ldd "$CSROOT/usr/bin/crowdsec" 2>/dev/null | grep -q 'not found'; then
	die "crowdsec needs libraries that are missing: $(ldd "$CSROOT/usr/bin/crowdsec" | grep 'not found' | tr -s ' \t' ' ') (apt-get install -y libsqlite3-0)"
fi
CSVER=$("$CSROOT/usr/bin/crowdsec" -version 2>&1 | sed -n 's/.*version: //p' | head -1)

LOG=$WORK/stream.log
log_t0=$(date +%s)
"$BIN" loadgen syslog --file "$WORK/stream-pri.log" --count "$LINES" --framing newline --rate 100000 --seed 1 --start "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
sed 's/^<[0-9]*>//' "$WORK/stream-pri.log" >"$LOG"
rm -f "$WORK/stream-pri.log"
[ "$(wc -l <"$LOG")" -eq "$LINES" ] || die "the log has $(wc -l <"$LOG") lines, not $LINES"
echo "log: lines=$LINES sshd=$(grep -c ' sshd\[' "$LOG") $(awk '/ sshd\[[0-9]+\]: Failed password/ {f++; for (i = 1; i < NF; i++) if ($i == "from") c[$(i+1)]++}
	END {for (ip in c) {n++; if (c[ip] >= 6) a++; if (c[ip] >= 10) b++}
	printf "failed_logins=%d source_ips=%d ips_ge6_failures=%d ips_ge10_failures=%d", f, n, a, b}' "$LOG")"

echo
echo "== nocsoc: file input over the same log (built-in rules)"
mkdir -p "$WORK/in"
cat >"$WORK/nocsoc.yaml" <<YAML
inputs:
  files:
    - {name: replay, paths: [$WORK/in/*.log], format: syslog, poll: 100ms}
detection:
  builtin: true
YAML
start_nocsoc "$WORK/nocsoc.yaml" "$PORT"
l0=$(cut -d' ' -f1 /proc/loadavg)
c0=$(cpu_ticks "$SPID")
t0=$(now_s)
ln "$LOG" "$WORK/in/stream.log" 2>/dev/null || cp "$LOG" "$WORK/in/stream.log"
n=0
for _ in $(seq 6000); do
	n=$(events_total)
	[ "$n" -ge "$LINES" ] && break
	sleep 0.1
done
t1=$(now_s)
c1=$(cpu_ticks "$SPID")
[ "$n" -ge "$LINES" ] || echo "nocsoc: timed out after 600s with events=$n of $LINES"
wall=$(sub "$t1" "$t0")
cpu=$(awk -v c=$((c1 - c0)) -v hz="$HZ" 'BEGIN{printf "%.2f", c/hz}')
echo "nocsoc: events=$n wall_s=$wall cpu_s=$cpu vmhwm_mb=$(($(status_kb "$SPID" VmHWM) / 1024)) load1_before=$l0"
ns_lps=$(rate "$n" "$wall")
ns_lpc=$(rate "$n" "$cpu")
echo "nocsoc: lines_per_s=$ns_lps lines_per_cpu_s=$ns_lpc cpu_cores=$(awk -v c="$cpu" -v w="$wall" 'BEGIN{printf "%.2f", c/w}')"

# ssh_bf_alerts: "SSH Brute Force" alerts (one per source IP, deduplicated
# by fingerprint) and their occurrences, paged 1000 at a time.
ssh_bf_alerts() {
	local before="" page total=0 occ=0 k o last
	while :; do
		page=$(curl -fsS -H "Authorization: Bearer $TOKEN" \
			"$BASE/api/v1/alerts?team=soc&source=sigma:6b0f3c52-1d0e-4a53-9a51-0c1f7c2e0a04&limit=1000${before:+&before=$before}")
		k=$(grep -c '"title": "SSH Brute Force (' <<<"$page" || true)
		o=$(grep -o '"occurrences": [0-9]*' <<<"$page" | awk '{s += $2} END {print s + 0}')
		total=$((total + k))
		occ=$((occ + o))
		[ "$k" -lt 1000 ] && break
		last=$(grep -o '"id": [0-9]*' <<<"$page" | tail -1 | grep -o '[0-9]*$')
		[ -n "$last" ] || break
		before=$last
	done
	echo "$total $occ"
}
# Detection runs behind the store: wait until the count is stable for 2s.
prev="" same=0
for _ in $(seq 300); do
	cur=$(ssh_bf_alerts)
	if [ "$cur" = "$prev" ]; then same=$((same + 1)); else same=0; fi
	[ "$same" -ge 4 ] && break
	prev=$cur
	sleep 0.5
done
read -r nalerts nocc <<<"$cur"
echo "nocsoc: alerts ssh_brute_force=$nalerts (one per source IP) matches=$nocc"
# Warnings and errors, without automatic response's "no enrolled endpoint"
# (no agent is enrolled here).
grep -E 'level=(WARN|ERROR)' "$WORK/server.log" | grep -v 'automatic response skipped' | cut -c1-300 | head -5 || true
if [ $(($(date +%s) - log_t0)) -gt 300 ]; then
	echo "nocsoc: note: counted more than 5 minutes after the log's first timestamp; correlation groups older than the rule's 5m timespan (against the wall clock) may have been pruned, so the alert count can be low"
fi
kill "$SPID" 2>/dev/null || true
wait "$SPID" 2>/dev/null || true
declare -A cs_lps cs_lpc
for r in $ROUTINES; do
	echo
	echo "== crowdsec $CSVER, parser_routines=$r (replay: -dsn file://LOG -type syslog -no-api; LAPI: -no-cs -no-capi)"
	CS=$WORK/cs-r$r
	cs_setup "$CS" "$r"
	"$CSROOT/usr/bin/crowdsec" -c "$CS/config.yaml" -no-cs -no-capi >"$CS/lapi.log" 2>&1 &
	LPID=$!
	pids+=("$LPID")
	wait_http "http://127.0.0.1:$CS_PORT/health" || { tail -5 "$CS/lapi.log" >&2; exit 1; }
	: >"$WORK/empty.log"
	timed "$CS/startup.out" "$CSROOT/usr/bin/crowdsec" -c "$CS/config.yaml" -dsn "file://$WORK/empty.log" -type syslog -no-api
	[ "$T_RC" = 0 ] || { tail -5 "$CS/startup.out" >&2; die "crowdsec (empty replay) exited $T_RC"; }
	sw=$T_WALL sc=$T_CPU
	l0=$(cut -d' ' -f1 /proc/loadavg)
	lc0=$(cpu_ticks "$LPID")
	timed "$CS/replay.out" "$CSROOT/usr/bin/crowdsec" -c "$CS/config.yaml" -dsn "file://$LOG" -type syslog -no-api
	lc1=$(cpu_ticks "$LPID")
	lapi_cpu=$(awk -v c=$((lc1 - lc0)) -v hz="$HZ" 'BEGIN{printf "%.2f", c/hz}')
	echo "crowdsec[r=$r]: exit=$T_RC wall_s=$T_WALL cpu_s=$T_CPU vmhwm_mb=$T_HWM_MB startup_wall_s=$sw startup_cpu_s=$sc lapi_cpu_s=$lapi_cpu load1_before=$l0"
	cs_lps[$r]=$(rate "$LINES" "$(sub "$T_WALL" "$sw")")
	cs_lpc[$r]=$(rate "$LINES" "$(sub "$T_CPU" "$sc")")
	echo "crowdsec[r=$r]: lines_per_s=$(rate "$LINES" "$T_WALL") lines_per_s_excl_startup=${cs_lps[$r]} lines_per_cpu_s_excl_startup=${cs_lpc[$r]}"
	# Errors other than the missing GeoIP databases (no GeoIP enricher is
	# used). "while pushing to api" errors are crowdsec 1.4 LAPI bugs under
	# concurrent pushes ("database is locked", "already connected to a
	# different alert_events"; reworked in 1.5, crowdsec PR 2446): alerts
	# lost between the agent and the db.
	errs=$(grep -E 'level=(error|fatal)' "$CS/replay.out" | grep -cv "unable to register plugin '\(GeoIp\|IpToRange\)" || true)
	echo "crowdsec[r=$r]: replay_errors=$errs push_errors=$(grep -c 'while pushing to api' "$CS/replay.out" || true)"
	grep -E 'level=(error|fatal)' "$CS/replay.out" | grep -v "unable to register plugin '\(GeoIp\|IpToRange\)" | cut -c1-300 | head -3 || true
	[ "$T_RC" = 0 ] || { tail -5 "$CS/replay.out" >&2; die "crowdsec replay exited $T_RC"; }
	"$CSROOT/usr/bin/cscli" -c "$CS/config.yaml" alerts list -l 0 -o raw >"$CS/alerts.csv" 2>"$CS/cscli.err" ||
		{ tail -3 "$CS/cscli.err" >&2; die "cscli alerts list failed"; }
	"$CSROOT/usr/bin/cscli" -c "$CS/config.yaml" decisions list -l 0 -o raw >"$CS/decisions.csv" 2>"$CS/cscli.err" ||
		{ tail -3 "$CS/cscli.err" >&2; die "cscli decisions list failed"; }
	# Overflows the agent raised (its info log: "Ip X performed 'SCENARIO'
	# (...)"), then what reached the LAPI db. alerts.csv:
	# id,scope,value,reason,...; decisions.csv: id,source,ip,reason,...
	echo "crowdsec[r=$r]: $(sed -n "s/.*msg=\"Ip \([^ ]*\) performed '\([^']*\)'.*/\2 \1/p" "$CS/replay.out" | awk '{n[$1]++; if ($1 == "crowdsecurity/ssh-bf") ip[$2] = 1}
		END {u = 0; for (i in ip) u++; printf "overflows ssh-bf=%d ssh-bf_user-enum=%d ssh-bf_distinct_ips=%d", n["crowdsecurity/ssh-bf"], n["crowdsecurity/ssh-bf_user-enum"], u}')"
	echo "crowdsec[r=$r]: stored $(awk -F, 'NR > 1 {n[$4]++; if ($4 == "crowdsecurity/ssh-bf") ip[$3] = 1}
		END {u = 0; for (i in ip) u++; printf "alerts ssh-bf=%d ssh-bf_user-enum=%d ssh-bf_distinct_ips=%d", n["crowdsecurity/ssh-bf"], n["crowdsecurity/ssh-bf_user-enum"], u}' "$CS/alerts.csv") decisions=$(awk -F, 'NR > 1' "$CS/decisions.csv" | wc -l)"
	kill "$LPID" 2>/dev/null || true
	wait "$LPID" 2>/dev/null || true
done


echo
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if (a + 0 > 0 && b + 0 > 0) printf "%.1f", a/b; else printf "n/a"}'; }
for r in $ROUTINES; do
	echo "summary: lines=$LINES nocsoc_lines_per_s=$ns_lps crowdsec_r${r}_lines_per_s=${cs_lps[$r]} ratio=$(ratio "$ns_lps" "${cs_lps[$r]}") | per CPU second: nocsoc=$ns_lpc crowdsec_r${r}=${cs_lpc[$r]} ratio=$(ratio "$ns_lpc" "${cs_lpc[$r]}")"
done
