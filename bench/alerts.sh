#!/usr/bin/env bash
# Alert management target 1 (docs/BENCHMARKS.md, "Alert management"):
# sustained alert intake through the HTTP API with dedup and routing,
# nocsoc versus Debian's prometheus-alertmanager on the same alert stream
# (same labels, same distinct label sets, same concurrency and duration) in
# the same run. Target: nocsoc >= 5,000 alerts/s on 2 cores.
#
# Runs, each DURATION long, against a fresh server:
#   1. nocsoc   events        (PagerDuty Events v2, one event per request)
#   2. nocsoc   alertmanager  (Alertmanager webhook v4, BATCH alerts per request)
#   3. Alertmanager am-v2     (POST /api/v2/alerts, BATCH alerts per request)
#   4./5. as 2./3. with BIGBATCH alerts per request (what Prometheus sends)
# Both servers route (a tree with matchers), group by alertname+instance
# with a 30s group wait, inhibit, and page a loopback webhook receiver.
#
# Usage: bench/alerts.sh   (env: CONCURRENCY=32 DURATION=30s DISTINCT=1000
#                           BATCH=1 BIGBATCH=64 BUILD=0 BIN AM)
# Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. bench/alerts-lib.sh

CONCURRENCY=${CONCURRENCY:-32}
DURATION=${DURATION:-30s}
DISTINCT=${DISTINCT:-1000}
BATCH=${BATCH:-1}
BIGBATCH=${BIGBATCH:-64}
PORT=${PORT:-19940}
RECV_PORT=${RECV_PORT:-19941}
AM_PORT=${AM_PORT:-19943}
AM_RECV_PORT=${AM_RECV_PORT:-19942}
BIN=${BIN:-/tmp/nocsoc-bench}
AM=${AM:-/usr/bin/prometheus-alertmanager}
WORK=$(mktemp -d /tmp/nocsoc-alerts.XXXXXX)
HZ=$(getconf CLK_TCK)

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -x "$AM" ] || { echo "$AM not found: apt-get install -y prometheus-alertmanager" >&2; exit 1; }
machine
echo "alertmanager: $("$AM" --version 2>&1 | head -1)"
if [ "${BUILD:-1}" = 1 ]; then go build -o "$BIN" ./cmd/nocsoc; fi

cat >"$WORK/nocsoc.yaml" <<YAML
alerting:
  route:
    team: noc
    group_by: [alertname, instance, source]
    group_wait: 30s
    channels: [bench-hook]
    routes:
      - matchers: ['team="soc"']
        team: soc
        origin: human
      - matchers: ['job=~"db|postgres.*"']
        group_wait: 10s
      - matchers: ['{job="loadgen", group="loadgen"}']
        channels: [bench-hook]
  inhibit_rules:
    - name: site-down
      source_matchers: ['alertname="SiteDown"']
      target_matchers: ['severity=~"warning|high|medium"']
      equal: [instance]
  channels:
    - name: bench-hook
      type: webhook
      url: http://127.0.0.1:$RECV_PORT/hook
YAML

cat >"$WORK/alertmanager.yml" <<YAML
route:
  receiver: hook
  group_by: [alertname, instance]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: ['team="soc"']
      receiver: hook
    - matchers: ['job=~"db|postgres.*"']
      receiver: hook
      group_wait: 10s
    - matchers: ['job="loadgen"', 'group="loadgen"']
      receiver: hook
inhibit_rules:
  - source_matchers: ['alertname="SiteDown"']
    target_matchers: ['severity=~"warning|high|medium"']
    equal: [instance]
receivers:
  - name: hook
    webhook_configs:
      - url: http://127.0.0.1:$AM_RECV_PORT/hook
YAML

start_receiver "$RECV_PORT"
start_receiver "$AM_RECV_PORT"
start_nocsoc "$WORK/nocsoc.yaml" "$PORT"
EVENTS_KEY=$(integration_key events)
AM_KEY=$(integration_key alertmanager)
mkdir -p "$WORK/am"
"$AM" --config.file="$WORK/alertmanager.yml" --web.listen-address="127.0.0.1:$AM_PORT" \
	--cluster.listen-address= --storage.path="$WORK/am" --log.level=warn 2>"$WORK/am.log" &
AMPID=$!
pids+=("$AMPID")
wait_http "http://127.0.0.1:$AM_PORT/-/ready"
echo "nocsoc: pid $SPID on $BASE; alertmanager: pid $AMPID on 127.0.0.1:$AM_PORT"
echo "stream: concurrency=$CONCURRENCY duration=$DURATION distinct=$DISTINCT label sets (warning alerts)"

# run NAME PID ARGS...: one load phase; prints the loadgen line and the
# server's CPU during it. Sets ACC (accepted alerts/s).
run() {
	local name=$1 pid=$2
	shift 2
	local c0 c1 t0 t1 out cores
	c0=$(cpu_ticks "$pid")
	t0=$(now_s)
	out=$("$BIN" loadgen alerts --concurrency "$CONCURRENCY" --duration "$DURATION" --distinct "$DISTINCT" "$@")
	t1=$(now_s)
	c1=$(cpu_ticks "$pid")
	kill -0 "$pid" 2>/dev/null || { echo "$name died" >&2; exit 1; }
	ACC=$(kv "$out" accepted_per_s)
	cores=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v t0="$t0" -v t1="$t1" 'BEGIN {printf "%.2f", c / hz / (t1 - t0)}')
	echo
	echo "== $name"
	echo "$out"
	echo "server: cpu_cores=$cores alerts_per_server_cpu_s=$(awk -v a="$ACC" -v c="$cores" 'BEGIN {printf "%.0f", (c > 0) ? a / c : 0}') rss_mb=$(($(status_kb "$pid" VmRSS) / 1024)) load1=$(cut -d' ' -f1 /proc/loadavg)"
}

run "nocsoc events (1 event/request)" "$SPID" --url "$BASE/api/v1/integrations/events" --key "$EVENTS_KEY" --format events --prefix ev
N_EV=$ACC
run "nocsoc alertmanager webhook ($BATCH alert(s)/request)" "$SPID" --url "$BASE/api/v1/integrations/alertmanager" --key "$AM_KEY" --format alertmanager --batch "$BATCH" --prefix s1
N_AM=$ACC
run "alertmanager /api/v2/alerts ($BATCH alert(s)/request)" "$AMPID" --url "http://127.0.0.1:$AM_PORT/api/v2/alerts" --format am-v2 --batch "$BATCH" --prefix s1
A_AM=$ACC
run "nocsoc alertmanager webhook ($BIGBATCH alerts/request)" "$SPID" --url "$BASE/api/v1/integrations/alertmanager" --key "$AM_KEY" --format alertmanager --batch "$BIGBATCH" --prefix s2
N_BIG=$ACC
run "alertmanager /api/v2/alerts ($BIGBATCH alerts/request)" "$AMPID" --url "http://127.0.0.1:$AM_PORT/api/v2/alerts" --format am-v2 --batch "$BIGBATCH" --prefix s2
A_BIG=$ACC

echo
echo "== summary (accepted alerts/s; target: nocsoc >= 5000)"
printf "nocsoc events 1/req:            %8.0f\n" "$N_EV"
printf "nocsoc alertmanager %3s/req:     %8.0f   alertmanager %3s/req: %8.0f   ratio nocsoc/alertmanager: %.2f\n" "$BATCH" "$N_AM" "$BATCH" "$A_AM" "$(awk -v a="$N_AM" -v b="$A_AM" 'BEGIN {print (b > 0) ? a / b : 0}')"
printf "nocsoc alertmanager %3s/req:     %8.0f   alertmanager %3s/req: %8.0f   ratio nocsoc/alertmanager: %.2f\n" "$BIGBATCH" "$N_BIG" "$BIGBATCH" "$A_BIG" "$(awk -v a="$N_BIG" -v b="$A_BIG" 'BEGIN {print (b > 0) ? a / b : 0}')"
# Pages after the 30s group wait, one per group (a count, not a latency:
# Alertmanager's payload carries the latest repeat's annotations, nocsoc's
# the first alert's title).
echo "pages sent: nocsoc $(json_field "$(curl -fsS "http://127.0.0.1:$RECV_PORT/-/stats")" deliveries), alertmanager $(json_field "$(curl -fsS "http://127.0.0.1:$AM_RECV_PORT/-/stats")" deliveries)"
