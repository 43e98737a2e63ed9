# Helpers of the SOC pipeline benchmarks (bench/soc-e2e.sh, bench/rsyslog.sh,
# bench/crowdsec.sh); sourced after bench/lib.sh and bench/alerts-lib.sh.

SIGMA_SRC=${SIGMA_SRC:-/work/shared/data/sigma/rules}

# fill_rules DIR N: copies N SigmaHQ rules into DIR (run time only, never
# committed): every rule of linux/builtin and web/webserver_generic (they
# apply to this traffic), then windows rules by sorted path to reach N.
fill_rules() {
	local dir=$1 n=$2 i=0 f
	mkdir -p "$dir"
	while read -r f; do
		[ "$i" -ge "$n" ] && break
		cp "$SIGMA_SRC/$f" "$dir/$(printf '%03d' "$i")-$(basename "$f")"
		i=$((i + 1))
	done < <(cd "$SIGMA_SRC" && { find linux/builtin web/webserver_generic -name '*.yml' | LC_ALL=C sort; find windows -name '*.yml' | LC_ALL=C sort; })
	echo "sigma rules copied: $i (linux/builtin + web/webserver_generic, then windows by sorted path) into $dir"
}

# events_total: nocsoc_ingest_events_total summed over inputs (needs BASE, TOKEN).
events_total() {
	curl -fsS -H "Authorization: Bearer $TOKEN" "$BASE/metrics" |
		awk '/^nocsoc_ingest_events_total/ {s += $NF} END {printf "%d\n", s}'
}

# unloaded_events: nocsoc_eventstore_unloaded_events, the acknowledged events
# not yet in DuckDB (needs BASE, TOKEN).
unloaded_events() {
	curl -fsS -H "Authorization: Bearer $TOKEN" "$BASE/metrics" |
		awk '/^nocsoc_eventstore_unloaded_events/ {printf "%d\n", $NF}'
}

# wait_loaded MAX_S: waits until fewer than 20,000 events are unloaded (at
# most MAX_S seconds) and prints how long that took.
wait_loaded() {
	local t0 u
	t0=$(now_s)
	while u=$(unloaded_events) && [ "$u" -ge 20000 ] && awk -v a="$t0" -v b="$(now_s)" -v m="$1" 'BEGIN{exit !(b-a < m)}'; do sleep 0.5; done
	echo "loader: unloaded=$u after waiting $(awk -v a="$t0" -v b="$(now_s)" 'BEGIN{printf "%.1f", b-a}') s"
}
