#!/usr/bin/env bash
# Alert management target 3 (docs/BENCHMARKS.md, "Alert management"): an
# incident with 10,000 attached alerts loads through the API
# (GET /api/v1/incidents/{id}, first page) in under 100 ms.
# 10,000 alerts with equal alertname and distinct instance labels are sent
# through the Alertmanager webhook intake; the route groups by alertname
# only, so all of them attach to ONE incident. Then 20 GETs of that incident
# are timed with curl's %{time_total} (a new connection each, as a browser
# or CLI would open) and the median and p95 printed.
#
# Usage: bench/incident-10k.sh   (env: ALERTS=10000 GETS=20 BUILD=0 BIN)
# Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. bench/alerts-lib.sh

ALERTS=${ALERTS:-10000}
GETS=${GETS:-20}
PORT=${PORT:-19960}
BIN=${BIN:-/tmp/nocsoc-bench}
WORK=$(mktemp -d /tmp/nocsoc-inc10k.XXXXXX)

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
    group_by: [alertname]
    group_wait: 5m
YAML
start_nocsoc "$WORK/nocsoc.yaml" "$PORT"
KEY=$(integration_key alertmanager)

echo
echo "== sending $ALERTS alerts of one group (alertname=LoadgenAlert, distinct instance)"
"$BIN" loadgen alerts --url "$BASE/api/v1/integrations/alertmanager" --key "$KEY" --format alertmanager \
	--batch 100 --concurrency 4 --distinct 0 --count "$ALERTS" --duration 60s --prefix i10k

list=$(curl -fsS -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/incidents")
ids=$(grep -o '"id": *[0-9]*' <<<"$list" | grep -o '[0-9]*$' | sort -u)
[ "$(wc -l <<<"$ids")" = 1 ] || { echo "expected one incident, got: $ids" >&2; exit 1; }
ID=$ids
URL="$BASE/api/v1/incidents/$ID"
curl -fsS -H "Authorization: Bearer $TOKEN" -o "$WORK/detail.json" "$URL"
total=$(grep -o '"alerts_total": *[0-9]*' "$WORK/detail.json" | grep -o '[0-9]*$' || true)
echo "incident $ID: alerts_total=$total, first page $(wc -c <"$WORK/detail.json") bytes"
[ "$total" = "$ALERTS" ] || { echo "incident has $total alerts, want $ALERTS" >&2; exit 1; }

echo
echo "== $GETS x GET $URL"
times=()
for _ in $(seq "$GETS"); do
	times+=("$(curl -fsS -H "Authorization: Bearer $TOKEN" -o /dev/null -w '%{time_total}' "$URL")")
done
sorted=$(printf '%s\n' "${times[@]}" | sort -g)
echo "times_s: $(tr '\n' ' ' <<<"$sorted")"
awk '{ t[NR] = $1 * 1000 } END {
	m = (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
	i = int(0.95 * NR + 0.999999); if (i < 1) i = 1
	printf "== summary: median %.1f ms, p95 %.1f ms, max %.1f ms over %d GETs (target < 100 ms); load1=%s\n", m, t[i], t[NR], NR, load
}' load="$(cut -d' ' -f1 /proc/loadavg)" <<<"$sorted"
