#!/usr/bin/env bash
# SOC pipeline target (docs/BENCHMARKS.md, "SOC pipeline"): TCP syslog ->
# parse -> normalize -> event store -> Sigma detection (>= 100 SigmaHQ rules
# + the built-in rules and correlations) -> alerts.
#  1. throughput: `nocsoc loadgen syslog --rate 0` for DURATION; accepted
#     events/s from the server's nocsoc_ingest_events_total (GET /metrics),
#     RSS (VmRSS sampled, VmHWM) and CPU from /proc. Target >= 100,000/s,
#     RSS < 1 GB. Accepted events are durable in the journal; loaded_per_s
#     is accepted less the growth of the loader's backlog
#     (nocsoc_eventstore_unloaded_events): what reached DuckDB. Then it
#     waits for the backlog to drain and prints how long that took.
#  2. latency (after the backlog has drained): at HALF_RATE (default 50,000/s), a marked 10-failure SSH
#     brute-force burst every MARK_EVERY from a fresh 2001:db8:ffff::/48
#     address; loadgen's built-in webhook receiver (the alert route for
#     team soc posts there) gives send(10th failure) -> alert delivery
#     p50/p99. Target p99 < 1 s.
#  3. rsyslog on the same stream (bench/rsyslog.sh), ratio.
#
# Usage: bench/soc-e2e.sh   (env: DURATION=60s HALF_RATE=50000 CONNECTIONS=4
#                            FRAMING=octet RULES=120 MARK_EVERY=250ms BUILD=1 BIN RSYSLOG=1
#                            LOAD_ROWS=0, the default; 122880 for whole row groups;
#                            THREADS=0, DuckDB's threads (the default, 2);
#                            MAX_BACKLOG=0, eventstore.max_backlog (the default);
#                            THROUGHPUT=0 skips phase 1, e.g. for a latency run at a
#                            rate the server sustains: THROUGHPUT=0 RSYSLOG=0 HALF_RATE=15000)
# Loopback only; every process started here is killed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. bench/alerts-lib.sh
. bench/soc-lib.sh

DURATION=${DURATION:-60s}
HALF_RATE=${HALF_RATE:-50000}
CONNECTIONS=${CONNECTIONS:-4}
FRAMING=${FRAMING:-octet}
RULES=${RULES:-120}
MARK_EVERY=${MARK_EVERY:-250ms}
PORT=${PORT:-19960}
SYSLOG_PORT=${SYSLOG_PORT:-19961}
RECV_PORT=${RECV_PORT:-19962}
BIN=${BIN:-/tmp/nocsoc-soc}
WORK=$(mktemp -d /tmp/nocsoc-soc.XXXXXX)
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
echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo none)$([ -n "$(git status --porcelain 2>/dev/null)" ] && echo ' (+ uncommitted work)')"
if [ "${BUILD:-1}" = 1 ]; then go build -o "$BIN" ./cmd/nocsoc; fi
fill_rules "$WORK/sigma" "$RULES"

cat >"$WORK/nocsoc.yaml" <<YAML
server:
  eventstore:
    load_rows: ${LOAD_ROWS:-0}
    threads: ${THREADS:-0}
    max_backlog: ${MAX_BACKLOG:-0}
inputs:
  syslog:
    - {name: syslog-tcp, protocol: tcp, listen: 127.0.0.1:$SYSLOG_PORT}
detection:
  rules: [$WORK/sigma]
  builtin: true
alerting:
  route:
    team: noc
    group_by: [alertname, source.ip]
    group_wait: 0s
    channels: [hook]
    routes:
      - matchers: ['team="soc"']
        team: soc
        origin: human
        group_wait: 0s
        group_by: [alertname, source.ip]
        channels: [hook]
  channels:
    - name: hook
      type: webhook
      url: http://127.0.0.1:$RECV_PORT/hook
YAML

start_nocsoc "$WORK/nocsoc.yaml" "$PORT"
# Until phase 2's loadgen takes the port with its own receiver, a plain
# receiver takes the alert webhooks, so that notifications succeed as in a
# real deployment instead of failing and being retried.
start_receiver "$RECV_PORT"
RECV_PID=${pids[-1]}
grep -o 'detection rules loaded[^"]*"*[^ ]* *rules=[0-9]* failed=[0-9]*' "$WORK/server.log" || grep 'detection rules loaded' "$WORK/server.log" || true
echo "nocsoc: pid $SPID on $BASE, syslog tcp 127.0.0.1:$SYSLOG_PORT"

gen() { "$BIN" loadgen syslog --addr "127.0.0.1:$SYSLOG_PORT" --connections "$CONNECTIONS" --framing "$FRAMING" "$@"; }

# rss_sampler FILE: VmRSS (kB) of the server every second, max kept.
rss_sampler() { local m=0 v; while kill -0 "$SPID" 2>/dev/null; do v=$(status_kb "$SPID" VmRSS); [ "$v" -gt "$m" ] && m=$v && echo "$m" >"$1"; sleep 1; done; }

echo
echo "== warm-up 10s at 20,000/s (not measured)"
gen --rate 20000 --duration 10s --seed 100
sleep 2

if [ "${THROUGHPUT:-1}" = 1 ]; then
echo
echo "== 1. throughput: unpaced for $DURATION ($CONNECTIONS connections, $FRAMING framing)"
rss_sampler "$WORK/rss.max" & pids+=("$!")
e0=$(events_total); u0=$(unloaded_events); c0=$(cpu_ticks "$SPID"); t0=$(now_s); l0=$(cut -d' ' -f1 /proc/loadavg)
out=$(gen --rate 0 --duration "$DURATION" --seed 1)
e1=$(events_total); u1=$(unloaded_events); c1=$(cpu_ticks "$SPID"); t1=$(now_s); l1=$(cut -d' ' -f1 /proc/loadavg)
echo "loadgen: $out"
# Accepted events are durable in the journal; the ones the loader has not
# moved into DuckDB yet are the backlog. loaded_per_s is what the whole
# pipeline kept up with: accepted less the backlog's growth.
echo "server: unloaded_before=$u0 unloaded_at_end=$u1 loaded_per_s=$(awk -v e=$((e1 - e0 - (u1 - u0))) -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", e/(b-a)}')"
# Events still in flight when the sender stops are stored a moment later;
# the window above counts only what the server accepted inside it.
sleep 3; e2=$(events_total)
echo "server: accepted_in_window=$((e1 - e0)) window_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') events_per_s=$(awk -v e=$((e1 - e0)) -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", e/(b-a)}') total_after_drain=$e2 cpu_cores=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", c/hz/(b-a)}')"
echo "server: rss_max_sampled_mb=$(($(cat "$WORK/rss.max" 2>/dev/null || echo 0) / 1024)) vmhwm_mb=$(($(status_kb "$SPID" VmHWM) / 1024)) rss_now_mb=$(($(status_kb "$SPID" VmRSS) / 1024)) load1_before=$l0 load1_after=$l1"
{ grep -c 'level=ERROR' "$WORK/server.log" || true; } | sed 's/^/server log errors: /'
# How long the loader takes to empty the backlog once the input stops
# (counted from 3 s after the window).
wait_loaded 300
grep 'level=ERROR' "$WORK/server.log" | sed 's/^time=[^ ]* //' | cut -c1-200 | sort | uniq -c | sort -rn | head -5 || true
# The pipeline's own NOC alerts (docs/inputs.md) raised by the overload.
echo "pipeline alerts: $(curl -fsS -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/alerts?team=noc" |
	grep -o '"alertname": *"Nocsoc[A-Za-z]*"' | sed 's/.*"\(Nocsoc[A-Za-z]*\)"/\1/' | sort -u | tr '\n' ' ' || true)"
fi

echo
echo "== 2. latency: $HALF_RATE/s for $DURATION, marked brute-force burst every $MARK_EVERY"
kill "$RECV_PID" 2>/dev/null || true
wait "$RECV_PID" 2>/dev/null || true
sleep 5
wait_loaded 300
e0=$(events_total); t0=$(now_s)
out=$(gen --rate "$HALF_RATE" --duration "$DURATION" --seed 2 --mark-every "$MARK_EVERY" --receiver "127.0.0.1:$RECV_PORT" --drain 15s)
e1=$(events_total); t1=$(now_s)
echo "loadgen: $out"
echo "server: events_per_s_incl_drain=$(awk -v e=$((e1 - e0)) -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", e/(b-a)}') vmhwm_mb=$(($(status_kb "$SPID" VmHWM) / 1024)) load1=$(cut -d' ' -f1 /proc/loadavg)"
curl -fsS -H "Authorization: Bearer $TOKEN" "$BASE/metrics" | grep -E '^nocsoc_(ingest_events_total|ingest_errors_total|eventstore_queue_depth|eventstore_unloaded_events)' || true

kill "$SPID" 2>/dev/null || true
wait "$SPID" 2>/dev/null || true

if [ "${RSYSLOG:-1}" = 1 ]; then
	echo
	echo "== 3. rsyslog on the same stream"
	BUILD=0 BIN=$BIN DURATION=$DURATION CONNECTIONS=$CONNECTIONS FRAMING=$FRAMING bench/rsyslog.sh
fi
