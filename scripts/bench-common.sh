# Functions the benchmark scripts share; sourced, never run. Expects ZOOCTL to name zooctl.

# Waits until a server answers `srvr` on 127.0.0.1:$1 (20 s at the most).
wait_port() {
  for _ in $(seq 100); do
    "$ZOOCTL" -s "127.0.0.1:$1" word srvr 2>/dev/null | grep -q Mode && return 0
    sleep 0.2
  done
  echo "server on $1 did not start" >&2
  exit 1
}

# The median of the numbers on stdin, one per line.
median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

# One zooctl bench run as every script takes it: 32 sessions × depth 4, 1 KiB values, 3 s of
# warm-up then 10 s measured. Arguments: connection string, percent of reads, extra flags.
bench_run() {
  "$ZOOCTL" -s "$1" bench --sessions 32 --depth 4 --value-size 1024 \
    --read-percent "$2" --warmup 3 --duration 10 "${@:3}"
}
