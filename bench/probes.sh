#!/usr/bin/env bash
# Benchmark 2 of docs/BENCHMARKS.md: maximum HTTP probe throughput against a
# fast loopback target, nocsoc's prober versus Prometheus' blackbox_exporter
# (Debian's prometheus-blackbox-exporter), same target process, same
# concurrency, same duration. Target: nocsoc >= 3,000 probes/s on 2 cores.
#
# Usage: bench/probes.sh     (env: CONCURRENCY DURATION TARGET_PORT BUILD=0
#                              EXPORTER_PORT BIN EXPORTER GOBENCH=0)
# Loopback only. Takes about 2 x DURATION plus the go test benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

CONCURRENCY=${CONCURRENCY:-32}
DURATION=${DURATION:-30s}
TARGET_PORT=${TARGET_PORT:-19902}
EXPORTER_PORT=${EXPORTER_PORT:-19915}
BIN=${BIN:-/tmp/nocsoc-bench}
EXPORTER=${EXPORTER:-/usr/bin/prometheus-blackbox-exporter}
WORK=$(mktemp -d /tmp/nocsoc-probes.XXXXXX)
HZ=$(getconf CLK_TCK)
TARGET="http://127.0.0.1:$TARGET_PORT/t/1"

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

machine
echo "exporter: $("$EXPORTER" --version 2>&1 | head -1)"

if [ "${GOBENCH:-1}" = 1 ]; then
	echo
	echo "== in-process: go test -run '^\$' -bench ProbeHTTP -benchtime 10s ./internal/check/"
	go test -run '^$' -bench ProbeHTTP -benchtime 10s ./internal/check/ | grep -E '^(Benchmark|cpu:)'
fi

if [ "${BUILD:-1}" = 1 ]; then go build -o "$BIN" ./cmd/nocsoc; fi

"$BIN" loadgen targets --listen "127.0.0.1:$TARGET_PORT" 2>"$WORK/targets.log" &
TPID=$!
pids+=("$TPID")

# blackbox_exporter's http prober builds a new client per probe with
# keep-alives disabled, so each probe opens a fresh connection, like
# nocsoc's; the target's connection counter below confirms it.
cat >"$WORK/blackbox.yml" <<YAML
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
YAML
"$EXPORTER" --config.file="$WORK/blackbox.yml" --web.listen-address="127.0.0.1:$EXPORTER_PORT" --log.level=warn 2>"$WORK/exporter.log" &
EPID=$!
pids+=("$EPID")
wait_http "http://127.0.0.1:$TARGET_PORT/-/stats"
wait_http "http://127.0.0.1:$EXPORTER_PORT/metrics"

# run NAME PID-TO-MEASURE CMD...: runs CMD, prints its report and the CPU of
# the target server and (for blackbox) of the exporter during the run.
run() {
	local name=$1 xpid=$2
	shift 2
	local s0 s1 t0 t1 tc0 tc1 xc0=0 xc1=0 out
	s0=$(curl -fsS "http://127.0.0.1:$TARGET_PORT/-/stats")
	tc0=$(cpu_ticks "$TPID")
	[ "$xpid" != - ] && xc0=$(cpu_ticks "$xpid")
	t0=$(now_s)
	out=$("$@")
	t1=$(now_s)
	tc1=$(cpu_ticks "$TPID")
	[ "$xpid" != - ] && xc1=$(cpu_ticks "$xpid")
	s1=$(curl -fsS "http://127.0.0.1:$TARGET_PORT/-/stats")
	echo
	echo "== $name: $*"
	echo "$out"
	awk -v r="$(($(json_field "$s1" requests) - $(json_field "$s0" requests)))" \
		-v c="$(($(json_field "$s1" connections) - $(json_field "$s0" connections)))" \
		-v tc="$((tc1 - tc0))" -v xc="$((xc1 - xc0))" -v hz="$HZ" -v w="$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" \
		-v x="$xpid" 'BEGIN {
		printf "target saw %d requests on %d new connections (%.3f connections/request)\n", r, c, (r ? c / r : 0)
		printf "target server CPU: %.2f cores\n", tc / hz / w
		if (x != "-") printf "blackbox_exporter CPU: %.2f cores\n", xc / hz / w
	}'
	echo "$out" | sed -n 's/.*rate=\([0-9.]*\)\/s.*/\1/p' >"$WORK/$name.rate"
	echo "$out" | sed -n 's/.* ok=\([0-9]*\) .*/\1/p' >"$WORK/$name.ok"
	# CPU seconds of the prober itself: the loadgen process for nocsoc, the
	# exporter (not its driver) for blackbox.
	if [ "$xpid" = - ]; then
		echo "$out" | sed -n 's/.* cpu=\([0-9.]*\)s.*/\1/p' >"$WORK/$name.cpu"
	else
		awk -v t="$((xc1 - xc0))" -v hz="$HZ" 'BEGIN {printf "%.2f", t / hz}' >"$WORK/$name.cpu"
	fi
}

run nocsoc - "$BIN" loadgen probes --target "$TARGET" --concurrency "$CONCURRENCY" --duration "$DURATION"
run blackbox "$EPID" "$BIN" loadgen blackbox --exporter "http://127.0.0.1:$EXPORTER_PORT" --target "$TARGET" --concurrency "$CONCURRENCY" --duration "$DURATION"

echo
awk -v a="$(cat "$WORK/nocsoc.rate")" -v b="$(cat "$WORK/blackbox.rate")" \
	-v ac="$(cat "$WORK/nocsoc.cpu")" -v bc="$(cat "$WORK/blackbox.cpu")" -v ao="$(cat "$WORK/nocsoc.ok")" -v bo="$(cat "$WORK/blackbox.ok")" 'BEGIN {
	printf "RESULT: nocsoc prober %.0f probes/s (target >= 3000), blackbox_exporter %.0f probes/s, ratio nocsoc/blackbox %.2f\n", a, b, (b ? a / b : 0)
	printf "RESULT: per CPU-second of the prober process: nocsoc %.0f, blackbox_exporter %.0f, ratio %.2f\n", ao / ac, bo / bc, (ao / ac) / (bo / bc)
}'
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
