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

# The hosts of server i: where its clients reach it and where its peers do. Loopback for
# both unless a script puts its servers in network namespaces (scripts/bench-faults.sh).
client_host() { echo 127.0.0.1; }
peer_host() { echo 127.0.0.1; }

# The zoo.cfg and myid of three servers in $1 (data in $1/data<i>), ports from $2: client
# $2+i, quorum $2+100+i, election $2+200+i; ZooKeeper's sample timing, 4lw open, no
# per-address connection limit, no AdminServer.
write_cfgs() { # dir base
  for i in 1 2 3; do
    mkdir -p "$1/data$i"
    echo "$i" > "$1/data$i/myid"
    {
      echo "tickTime=2000"
      echo "initLimit=10"
      echo "syncLimit=5"
      echo "dataDir=$1/data$i"
      echo "admin.enableServer=false"
      echo "4lw.commands.whitelist=*"
      echo "maxClientCnxns=0"
      for j in 1 2 3; do
        echo "server.$j=$(peer_host $j):$(($2 + 100 + j)):$(($2 + 200 + j));$(client_host $j):$(($2 + j))"
      done
    } > "$1/zoo$i.cfg"
  done
}

# The connection string of the three servers of write_cfgs' base $1.
servers() { echo "$(client_host 1):$(($1 + 1)),$(client_host 2):$(($1 + 2)),$(client_host 3):$(($1 + 3))"; }

# Waits until the three servers of base $1 report a leader or follower mode (60 s at most).
wait_ensemble() { # base
  for _ in $(seq 300); do
    modes=$("$ZOOCTL" -s "$(servers "$1")" word srvr 2>/dev/null | grep -c '^Mode: \(leader\|follower\)' || true)
    [ "$modes" = 3 ] && return 0
    sleep 0.2
  done
  echo "the ensemble on $1 did not start" >&2
  exit 1
}
