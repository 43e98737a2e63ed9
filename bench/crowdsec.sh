#!/usr/bin/env bash
# The same SSH brute-force log (the SOC benchmark's mixed stream, newline
# RFC 3164, written by `nocsoc loadgen syslog --file`) through CrowdSec in
# replay mode and through nocsoc's pipeline (file input -> parse ->
# normalize -> store -> detect with the built-in rules). Prints lines/s of
# both and the brute-force alerts each raised.
#
# CrowdSec runs from a private config directory (the package's system
# config is not used or changed) with the parsers and scenario of the
# package's offline hub copy (/usr/share/crowdsec/hub): s00-raw
# syslog-logs, s01-parse sshd-logs, s02-enrich dateparse-enrich, scenario
# ssh-bf: `crowdsec -c CONF -dsn file://LOG -type syslog -no-api`.
#
# Usage: bench/crowdsec.sh   (env: LINES=1000000 BUILD=1 BIN)
# Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. bench/alerts-lib.sh
. bench/soc-lib.sh

LINES=${LINES:-1000000}
PORT=${PORT:-19980}
BIN=${BIN:-/tmp/nocsoc-soc}
HUB=${HUB:-/usr/share/crowdsec/hub}
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

machine
if [ "${BUILD:-1}" = 1 ]; then go build -o "$BIN" ./cmd/nocsoc; fi
LOG=$WORK/stream.log
"$BIN" loadgen syslog --file "$LOG" --count "$LINES" --framing newline --rate 100000 --seed 1 --start "$(date -u -d '-10 min' +%Y-%m-%dT%H:%M:%SZ)"
echo "sshd lines: $(grep -c ' sshd\[' "$LOG"), failures: $(grep -c 'Failed password' "$LOG")"

echo
echo "== crowdsec $(crowdsec -version 2>&1 | sed -n 's/.*version: //p' | head -1)"
CS=$WORK/cs
mkdir -p "$CS/etc/parsers/s00-raw" "$CS/etc/parsers/s01-parse" "$CS/etc/parsers/s02-enrich" "$CS/etc/scenarios" "$CS/data"
cp "$HUB/parsers/s00-raw/crowdsecurity/syslog-logs.yaml" "$CS/etc/parsers/s00-raw/"
cp "$HUB/parsers/s01-parse/crowdsecurity/sshd-logs.yaml" "$CS/etc/parsers/s01-parse/"
cp "$HUB/parsers/s02-enrich/crowdsecurity/dateparse-enrich.yaml" "$CS/etc/parsers/s02-enrich/"
cp "$HUB/scenarios/crowdsecurity/ssh-bf.yaml" "$CS/etc/scenarios/"
cp -r /etc/crowdsec/patterns "$CS/etc/"
: >"$CS/etc/simulation.yaml"
cat >"$CS/config.yaml" <<YAML
common:
  daemonize: false
  log_media: stdout
  log_level: warning
config_paths:
  config_dir: $CS/etc/
  data_dir: $CS/data/
  simulation_path: $CS/etc/simulation.yaml
  hub_dir: $HUB/
  index_path: $HUB/.index.json
crowdsec_service:
  acquisition_path: $CS/etc/acquis.yaml
  parser_routines: 1
prometheus:
  enabled: false
# 1.4 refuses to start without an API client section even with -no-api;
# the address is a closed loopback port (nothing is ever sent elsewhere).
api:
  client:
    credentials_path: $CS/etc/local_api_credentials.yaml
YAML
printf 'url: http://127.0.0.1:1/\nlogin: bench\npassword: bench\n' >"$CS/etc/local_api_credentials.yaml"
: >"$CS/etc/acquis.yaml"
l0=$(cut -d' ' -f1 /proc/loadavg); t0=$(now_s)
set +e
/usr/bin/time -v crowdsec -c "$CS/config.yaml" -dsn "file://$LOG" -type syslog -no-api >"$WORK/cs.out" 2>"$WORK/cs.err"
rc=$?
set -e
t1=$(now_s)
echo "crowdsec: exit=$rc wall_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') lines_per_s=$(awk -v n="$LINES" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", n/(b-a)}') load1_before=$l0"
grep -E 'Maximum resident|Elapsed|User time|System time' "$WORK/cs.err" | sed 's/^\s*/crowdsec: /'
echo "crowdsec: ssh-bf overflows: $(grep -ci 'ssh-bf' "$WORK/cs.out" "$WORK/cs.err" | awk -F: '{s+=$NF} END {print s}')"
grep -iE 'level=(error|fatal)' "$WORK/cs.out" "$WORK/cs.err" | head -5 || true

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
l0=$(cut -d' ' -f1 /proc/loadavg); c0=$(cpu_ticks "$SPID"); t0=$(now_s)
ln "$LOG" "$WORK/in/stream.log" 2>/dev/null || cp "$LOG" "$WORK/in/stream.log"
n=0
for _ in $(seq 3000); do n=$(events_total); [ "$n" -ge "$LINES" ] && break; sleep 0.1; done
t1=$(now_s); c1=$(cpu_ticks "$SPID")
alerts=$(curl -fsS -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/alerts?team=soc&limit=1000" | grep -o '"SSH Brute Force[^"]*"' | sort -u | wc -l)
echo "nocsoc: events=$n wall_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') lines_per_s=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", n/(b-a)}') cpu_cores=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", c/hz/(b-a)}') vmhwm_mb=$(($(status_kb "$SPID" VmHWM) / 1024)) load1_before=$l0 ssh_brute_force_alert_titles=$alerts"
