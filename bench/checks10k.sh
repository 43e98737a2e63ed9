#!/usr/bin/env bash
# Benchmark 1 of docs/BENCHMARKS.md: CPU and RSS of the nocsoc server running
# CHECKS http checks every INTERVAL seconds against loopback targets.
# Target: under 25% of one core and under 250 MB RSS for 10,000 checks at 60s.
#
# Usage: bench/checks10k.sh        (env: CHECKS INTERVAL SETTLE WINDOW
#                                    TARGET_PORT SERVER_PORT BIN BUILD=0 KEEP=1)
# Loopback only. Takes SETTLE + WINDOW seconds (default 150 + 180).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

CHECKS=${CHECKS:-10000}
INTERVAL=${INTERVAL:-60}
SETTLE=${SETTLE:-$((2 * INTERVAL + 30))} # first runs come within 30s, then 2 full intervals
WINDOW=${WINDOW:-180}
TARGET_PORT=${TARGET_PORT:-19901}
SERVER_PORT=${SERVER_PORT:-19980}
BIN=${BIN:-/tmp/nocsoc-bench}
WORK=$(mktemp -d /tmp/nocsoc-checks10k.XXXXXX)
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

"$BIN" loadgen targets --listen "127.0.0.1:$TARGET_PORT" 2>"$WORK/targets.log" &
TPID=$!
pids+=("$TPID")
wait_http "http://127.0.0.1:$TARGET_PORT/-/stats"

"$BIN" loadgen checks-config --checks "$CHECKS" --target "http://127.0.0.1:$TARGET_PORT" --interval "${INTERVAL}s" >"$WORK/nocsoc.yaml"
echo "config:  $CHECKS http checks every ${INTERVAL}s on http://127.0.0.1:$TARGET_PORT/t/<i> ($(wc -c <"$WORK/nocsoc.yaml") bytes)"

"$BIN" serve --config "$WORK/nocsoc.yaml" --data "$WORK/data" --listen "127.0.0.1:$SERVER_PORT" 2>"$WORK/server.log" &
SPID=$!
pids+=("$SPID")
wait_http "http://127.0.0.1:$SERVER_PORT/healthz" || { tail -5 "$WORK/server.log" >&2; exit 1; }
echo "server:  pid $SPID on 127.0.0.1:$SERVER_PORT; settling ${SETTLE}s"
sleep "$SETTLE"

req0=$(json_field "$(curl -fsS "http://127.0.0.1:$TARGET_PORT/-/stats")" requests)
t0=$(now_s)
c0=$(cpu_ticks "$SPID")
tc0=$(cpu_ticks "$TPID")
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
tc1=$(cpu_ticks "$TPID")
t1=$(now_s)
req1=$(json_field "$(curl -fsS "http://127.0.0.1:$TARGET_PORT/-/stats")" requests)
hwm=$(status_kb "$SPID" VmHWM)
rss_end=$(status_kb "$SPID" VmRSS)

awk -v c0="$c0" -v c1="$c1" -v tc0="$tc0" -v tc1="$tc1" -v t0="$t0" -v t1="$t1" -v hz="$HZ" \
	-v r0="$req0" -v r1="$req1" -v checks="$CHECKS" -v iv="$INTERVAL" \
	-v rmin="$rss_min" -v rmax="$rss_max" -v rsum="$rss_sum" -v n="$n" -v hwm="$hwm" -v rend="$rss_end" 'BEGIN {
	wall = t1 - t0; cpu = (c1 - c0) / hz
	printf "window:  %.1f s\n", wall
	printf "server CPU:  %.2f s = %.1f%% of one core (target < 25%%)\n", cpu, 100 * cpu / wall
	printf "server RSS:  VmRSS min %.1f / avg %.1f / max %.1f / end %.1f MB; VmHWM (peak since start) %.1f MB (target < 250 MB)\n", rmin / 1024, rsum / n / 1024, rmax / 1024, rend / 1024, hwm / 1024
	printf "probes seen by the targets: %d in the window = %.1f/s (expected %.1f/s for %d checks every %ds)\n", r1 - r0, (r1 - r0) / wall, checks / iv, checks, iv
	printf "target server CPU (not nocsoc): %.1f%% of one core\n", 100 * (tc1 - tc0) / hz / wall
}'

# Scheduler health, read after the window so the scrape does not count.
if tok=$("$BIN" token create --data "$WORK/data" --user admin --name bench 2>/dev/null); then
	curl -fsS -H "Authorization: Bearer $tok" "http://127.0.0.1:$SERVER_PORT/metrics" |
		grep -E '^nocsoc_(scheduler_|checks_by_state)' | sed 's/^/metrics: /' || true
fi
echo "server log: $(grep -c 'level=ERROR' "$WORK/server.log" || true) ERROR lines, $(grep -c 'level=WARN' "$WORK/server.log" || true) WARN lines"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
