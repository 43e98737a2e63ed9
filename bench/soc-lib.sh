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
