#!/usr/bin/env bash
# Alert management target 2 (docs/BENCHMARKS.md, "Alert management"): delay
# from a critical alert's arrival to its webhook delivery, at RATE alerts/s.
# Every alert is critical with a distinct instance label, so each opens a new
# incident that pages at once (no group wait) to a webhook channel on
# loopback. The loadgen receiver measures, per delivery, arrival time minus
# the sent_ns stamped in the alert's summary (the incident title), so the
# figure includes the HTTP intake, the commit, routing, the notification
# queue and the webhook POST. Target: p99 < 200 ms at 1,000 alerts/s.
#
# Usage: bench/page-latency.sh   (env: RATE=1000 DURATION=30s WARMUP=5s
#                                 CONCURRENCY=64 FORMAT=events BUILD=0 BIN)
# Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. bench/alerts-lib.sh

RATE=${RATE:-1000}
DURATION=${DURATION:-30s}
WARMUP=${WARMUP:-5s}
CONCURRENCY=${CONCURRENCY:-64}
FORMAT=${FORMAT:-events}
PORT=${PORT:-19950}
RECV_PORT=${RECV_PORT:-19951}
BIN=${BIN:-/tmp/nocsoc-bench}
WORK=$(mktemp -d /tmp/nocsoc-page.XXXXXX)
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

cat >"$WORK/nocsoc.yaml" <<YAML
alerting:
  route:
    team: noc
    group_by: [alertname, instance, source]
    group_wait: 30s
    channels: [pager]
    routes:
      - matchers: ['team="soc"']
        team: soc
        origin: human
  channels:
    - name: pager
      type: webhook
      url: http://127.0.0.1:$RECV_PORT/hook
      secret: bench-hmac-secret
YAML

start_receiver "$RECV_PORT"
start_nocsoc "$WORK/nocsoc.yaml" "$PORT"
case $FORMAT in
events) KEY=$(integration_key events); URL=$BASE/api/v1/integrations/events ;;
alertmanager) KEY=$(integration_key alertmanager); URL=$BASE/api/v1/integrations/alertmanager ;;
*) echo "FORMAT must be events or alertmanager" >&2; exit 2 ;;
esac
echo "nocsoc: pid $SPID on $BASE; receiver on 127.0.0.1:$RECV_PORT; format=$FORMAT rate=$RATE/s"

gen() { "$BIN" loadgen alerts --url "$URL" --key "$KEY" --format "$FORMAT" --critical --distinct 0 \
	--rate "$RATE" --concurrency "$CONCURRENCY" "$@"; }

echo
echo "== warm-up $WARMUP (not measured)"
gen --duration "$WARMUP" --prefix warm
# Let the warm-up's pages drain: wait until the receiver's count stops
# growing (at most 30 s), so none of them is counted below.
prev=-1
for _ in $(seq 30); do
	cur=$(sed -n 's/.*"deliveries":\([0-9]*\).*/\1/p' <<<"$(curl -fsS "http://127.0.0.1:$RECV_PORT/-/stats")")
	[ "$cur" = "$prev" ] && break
	prev=$cur
	sleep 1
done
curl -fsS -X POST "http://127.0.0.1:$RECV_PORT/-/reset"

echo
echo "== measured $DURATION at $RATE critical alerts/s"
c0=$(cpu_ticks "$SPID"); t0=$(now_s)
out=$(gen --duration "$DURATION" --prefix page)
t1=$(now_s); c1=$(cpu_ticks "$SPID")
echo "$out"
# Wait for deliveries still in flight (at most 30 s, until the count
# stops growing); pages later than that are missing from the figures.
prev=-1
for _ in $(seq 30); do
	stats=$(curl -fsS "http://127.0.0.1:$RECV_PORT/-/stats")
	cur=$(sed -n 's/.*"deliveries":\([0-9]*\).*/\1/p' <<<"$stats")
	[ "$cur" = "$prev" ] && break
	prev=$cur
	sleep 1
done
echo "server: cpu_cores=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v t0="$t0" -v t1="$t1" 'BEGIN {printf "%.2f", c / hz / (t1 - t0)}') rss_mb=$(($(status_kb "$SPID" VmRSS) / 1024)) load1=$(cut -d' ' -f1 /proc/loadavg)"
echo "receiver: $stats"
sent=$(kv "$out" accepted)
got=$(sed -n 's/.*"measured":\([0-9]*\).*/\1/p' <<<"$stats")
p99=$(sed -n 's/.*"p99_ms":\([0-9.]*\).*/\1/p' <<<"$stats")
echo
echo "== summary: $got of $sent critical alerts paged; alert -> webhook p99 = ${p99} ms (target < 200 ms)"
