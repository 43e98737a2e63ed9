#!/usr/bin/env bash
# Server cost of a fleet (issue 6, "Performance"): CPU and RSS of the nocsoc
# server while AGENTS simulated agents (nocsoc loadgen agents) each send a
# heartbeat and a ~40-sample metrics batch every INTERVAL, phases spread
# evenly, over keep-alive HTTP on loopback. The server runs threshold rules
# and the storage forecast on every batch, as in production.
# Target: under one core for 5,000 agents at 30s.
#
# Usage: bench/agents5000.sh     (env: AGENTS=5000 INTERVAL=30 SETTLE WINDOW=180
#                                 CONNECTIONS=256 SERVER_PORT BIN BUILD=0 KEEP=1)
# Loopback only. Takes enrollment + SETTLE + WINDOW seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

AGENTS=${AGENTS:-5000}
INTERVAL=${INTERVAL:-30}
SETTLE=${SETTLE:-$((INTERVAL + 10))} # one full round of every agent after enrollment
WINDOW=${WINDOW:-180}
CONNECTIONS=${CONNECTIONS:-256}
SERVER_PORT=${SERVER_PORT:-19960}
BIN=${BIN:-/tmp/nocsoc-bench}
WORK=$(mktemp -d /tmp/nocsoc-agents5000.XXXXXX)
HZ=$(getconf CLK_TCK)

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

machine
echo "binary:  $BIN"
if [ "${BUILD:-1}" = 1 ]; then go build -o "$BIN" ./cmd/nocsoc; fi

cat >"$WORK/nocsoc.yaml" <<YAML
endpoints:
  thresholds:
    - {name: disk-full, metric: disk.used_percent, labels: {mount: "/"}, op: ">", value: 90, for: 10m, severity: critical}
    - {name: cpu-high, metric: cpu.percent, op: ">", value: 95, for: 5m}
    - {name: swap-used, metric: swap.used_percent, op: ">", value: 50, for: 10m, severity: medium}
  forecast:
    alert_days: 7
YAML

"$BIN" serve --config "$WORK/nocsoc.yaml" --data "$WORK/data" --listen "127.0.0.1:$SERVER_PORT" 2>"$WORK/server.log" &
SPID=$!
pids+=("$SPID")
wait_http "http://127.0.0.1:$SERVER_PORT/healthz" || { tail -5 "$WORK/server.log" >&2; exit 1; }
TOKEN=$("$BIN" token create --data "$WORK/data" --user admin --name bench)
echo "server:  pid $SPID on 127.0.0.1:$SERVER_PORT"

"$BIN" loadgen agents --server "http://127.0.0.1:$SERVER_PORT" --token "$TOKEN" --count "$AGENTS" \
	--interval "${INTERVAL}s" --connections "$CONNECTIONS" --progress 60s >"$WORK/loadgen.out" 2>"$WORK/loadgen.log" &
LPID=$!
pids+=("$LPID")
t_enroll=$(now_s)
until grep -q '^enrolled:' "$WORK/loadgen.log"; do
	kill -0 "$LPID" 2>/dev/null || { echo "loadgen died:" >&2; cat "$WORK/loadgen.log" >&2; exit 1; }
	sleep 1
done
echo "loadgen: $(grep '^enrolled:' "$WORK/loadgen.log") (wall $(awk -v a="$t_enroll" -v b="$(now_s)" 'BEGIN {printf "%.1f", b - a}')s)"
echo "settling ${SETTLE}s: every agent reports once before the window"
sleep "$SETTLE"

t0=$(now_s)
c0=$(cpu_ticks "$SPID")
lc0=$(cpu_ticks "$LPID")
rss_min=999999999 rss_max=0 rss_sum=0 n=0
echo "measuring for ${WINDOW}s (RSS sampled every 5s)"
end=$(awk -v t="$t0" -v w="$WINDOW" 'BEGIN {printf "%.3f", t + w}')
while awk -v n="$(now_s)" -v e="$end" 'BEGIN {exit !(n < e)}'; do
	kill -0 "$SPID" 2>/dev/null || { echo "server died; see $WORK/server.log" >&2; KEEP=1; exit 1; }
	r=$(status_kb "$SPID" VmRSS)
	((r < rss_min)) && rss_min=$r
	((r > rss_max)) && rss_max=$r
	rss_sum=$((rss_sum + r)) n=$((n + 1))
	left=$(awk -v n="$(now_s)" -v e="$end" 'BEGIN {d = e - n; print (d > 5 ? 5 : (d > 0 ? d : 0))}')
	sleep "$left"
done
c1=$(cpu_ticks "$SPID")
lc1=$(cpu_ticks "$LPID")
t1=$(now_s)
hwm=$(status_kb "$SPID" VmHWM)
rss_end=$(status_kb "$SPID" VmRSS)
kill -INT "$LPID"
wait "$LPID" || true

awk -v c0="$c0" -v c1="$c1" -v lc0="$lc0" -v lc1="$lc1" -v t0="$t0" -v t1="$t1" -v hz="$HZ" -v agents="$AGENTS" -v iv="$INTERVAL" \
	-v rmin="$rss_min" -v rmax="$rss_max" -v rsum="$rss_sum" -v n="$n" -v hwm="$hwm" -v rend="$rss_end" 'BEGIN {
	wall = t1 - t0; cpu = (c1 - c0) / hz
	printf "window:  %.1f s, %d agents every %ds = %.1f heartbeats/s + %.1f batches/s expected\n", wall, agents, iv, agents / iv, agents / iv
	printf "server CPU:  %.2f s = %.2f cores (target < 1 core)\n", cpu, cpu / wall
	printf "server RSS:  VmRSS min %.1f / avg %.1f / max %.1f / end %.1f MB; VmHWM (peak since start) %.1f MB\n", rmin / 1024, rsum / n / 1024, rmax / 1024, rend / 1024, hwm / 1024
	printf "loadgen CPU (not nocsoc): %.2f cores\n", (lc1 - lc0) / hz / wall
}'
echo "loadgen: $(cat "$WORK/loadgen.out")"
echo "server log: $(grep -c 'level=ERROR' "$WORK/server.log" || true) ERROR lines, $(grep -c 'level=WARN' "$WORK/server.log" || true) WARN lines"
echo "event store: $(du -sh "$WORK/data" | cut -f1) data dir"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
