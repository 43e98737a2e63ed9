# Helpers shared by the bench/*.sh scripts (sourced, not run).

# cpu_ticks PID: user+system CPU of the whole process (all threads) in clock
# ticks. The comm field may hold spaces, so fields are counted after ") ".
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

# status_kb PID FIELD: a kB value from /proc/PID/status (VmRSS, VmHWM).
status_kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }

# now_s: wall-clock seconds with nanoseconds.
now_s() { date +%s.%N; }

# wait_http URL: wait up to 60s for URL to answer.
wait_http() {
	for _ in $(seq 600); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "timed out waiting for $1" >&2
	return 1
}

# json_field JSON KEY: an integer field of a flat JSON object.
json_field() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" <<<"$1"; }

# machine: the header every benchmark prints.
machine() {
	echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "machine: nproc=$(nproc), $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo)"
	echo "kernel:  $(uname -r); go: $(go env GOVERSION)"
	echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min load average before the run; other work on the machine skews figures)"
}
