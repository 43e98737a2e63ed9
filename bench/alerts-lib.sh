# Helpers shared by the alert-management benchmarks (bench/alerts.sh,
# bench/page-latency.sh, bench/incident-10k.sh); sourced after bench/lib.sh.
# They expect WORK (scratch directory), BIN (nocsoc binary) and a pids
# array that the caller's cleanup trap kills.

ADMIN_PW=${ADMIN_PW:-bench-admin-pw-0123456789}

# start_nocsoc CONFIG PORT: starts the server on 127.0.0.1:PORT with a fresh
# data directory; sets SPID and TOKEN (an admin API token).
start_nocsoc() {
	local cfg=$1 port=$2
	NOCSOC_ADMIN_PASSWORD=$ADMIN_PW "$BIN" serve --config "$cfg" --data "$WORK/data" \
		--listen "127.0.0.1:$port" 2>"$WORK/server.log" &
	SPID=$!
	pids+=("$SPID")
	BASE="http://127.0.0.1:$port"
	wait_http "$BASE/healthz" || { tail -5 "$WORK/server.log" >&2; exit 1; }
	TOKEN=$(curl -fsS -u "admin:$ADMIN_PW" -X POST -d '{"name":"bench"}' "$BASE/api/v1/tokens" |
		sed -n 's/.*"token": *"\([^"]*\)".*/\1/p')
	[ -n "$TOKEN" ] || { echo "could not create an API token" >&2; exit 1; }
}

# integration_key TYPE: creates an integration of TYPE (events,
# alertmanager, webhook) and prints its key.
integration_key() {
	curl -fsS -H "Authorization: Bearer $TOKEN" -X POST \
		-d "{\"type\":\"$1\",\"name\":\"bench-$1\"}" "$BASE/api/v1/integrations" |
		sed -n 's/.*"key": *"\([^"]*\)".*/\1/p'
}

# start_receiver PORT: a loadgen webhook receiver on 127.0.0.1:PORT.
start_receiver() {
	"$BIN" loadgen receiver --listen "127.0.0.1:$1" >"$WORK/receiver-$1.out" 2>"$WORK/receiver-$1.log" &
	pids+=("$!")
	wait_http "http://127.0.0.1:$1/-/stats"
}

# kv LINE KEY: the value of KEY in a key=value line.
kv() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p" | head -1; }
