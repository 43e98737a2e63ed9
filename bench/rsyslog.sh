#!/usr/bin/env bash
# rsyslog on the SOC benchmark's stream: a separate rsyslogd started by hand
# with its own config (imtcp on a loopback port, omfile out; the system's
# /etc/rsyslog.conf and service are not touched), fed by the same
# `nocsoc loadgen syslog --rate 0` for DURATION. Prints lines written per
# second (lines in the output file / sender's wall time).
#
# Usage: bench/rsyslog.sh   (env: DURATION=60s CONNECTIONS=4 FRAMING=octet BUILD=1 BIN)
# Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

DURATION=${DURATION:-60s}
CONNECTIONS=${CONNECTIONS:-4}
FRAMING=${FRAMING:-octet}
PORT=${RSYSLOG_PORT:-19970}
BIN=${BIN:-/tmp/nocsoc-soc}
WORK=$(mktemp -d /tmp/nocsoc-rsyslog.XXXXXX)
HZ=$(getconf CLK_TCK)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v rsyslogd >/dev/null || { echo "rsyslogd not installed (apt-get install -y rsyslog)" >&2; exit 1; }
if [ "${BUILD:-1}" = 1 ]; then go build -o "$BIN" ./cmd/nocsoc; fi
echo "rsyslogd: $(rsyslogd -v | head -1); load: $(cut -d' ' -f1-3 /proc/loadavg)"
cat >"$WORK/rsyslog.conf" <<CONF
global(workDirectory="$WORK")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="$PORT")
action(type="omfile" file="$WORK/out.log")
CONF
rsyslogd -n -f "$WORK/rsyslog.conf" -i "$WORK/rsyslogd.pid" 2>"$WORK/rsyslogd.err" &
RPID=$!
pids+=("$RPID")
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done

c0=$(cpu_ticks "$RPID"); t0=$(now_s)
out=$("$BIN" loadgen syslog --addr "127.0.0.1:$PORT" --rate 0 --duration "$DURATION" --connections "$CONNECTIONS" --framing "$FRAMING" --seed 1)
t1=$(now_s); c1=$(cpu_ticks "$RPID")
n1=$(wc -l <"$WORK/out.log")
# Let rsyslog finish what it queued, for the total.
prev=-1; for _ in $(seq 30); do n=$(wc -l <"$WORK/out.log"); [ "$n" = "$prev" ] && break; prev=$n; sleep 1; done
echo "loadgen: $out"
echo "rsyslog: lines_in_window=$n1 window_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') lines_per_s=$(awk -v e="$n1" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", e/(b-a)}') total_after_drain=$n cpu_cores=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", c/hz/(b-a)}') vmhwm_mb=$(($(status_kb "$RPID" VmHWM) / 1024)) load1=$(cut -d' ' -f1 /proc/loadavg)"
