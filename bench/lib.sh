# Shared by the benchmark scripts (source it): starts billingd in the
# background and waits for the address it announces.

# start_billingd BILLINGD LOG ARGS...: sets server_pid and address.
start_billingd() {
  local billingd=$1 log=$2
  shift 2
  # Emptied here, not only by the redirection below: that happens in the
  # background child, and a reused log's old address must not be read first.
  : >"$log"
  # Benchmarks measure the service, not auth: the explicit dev mode.
  "$billingd" --listen=127.0.0.1:0 --insecure-no-auth "$@" 2>"$log" &
  server_pid=$!
  address=
  for _ in $(seq 1 300); do
    address=$(grep -so 'listening on [0-9.]*:[0-9]*' "$log" | head -1 | cut -d' ' -f3 || true)
    [[ -n $address ]] && return 0
    sleep 0.1
  done
  echo "billingd did not start" >&2
  cat "$log" >&2
  return 1
}

# stop_billingd: stops the server started by start_billingd, if any.
stop_billingd() {
  if [[ -n ${server_pid:-} ]]; then
    kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
  return 0
}

# use_scratch_dir: sets `work` to a new temporary directory and, at exit,
# stops the server started by start_billingd and removes the directory.
use_scratch_dir() {
  work=$(mktemp -d)
  trap 'stop_billingd; rm -rf "$work"' EXIT
}

# median: the median of the numbers on standard input, one per line.
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# start_postgres DIR: initialises and starts a PostgreSQL 15 of its own in DIR
# (durable: fsync and synchronous_commit on), listening on 127.0.0.1 on a
# free port, trusting local connections as user postgres. As root it runs as
# the `postgres` system user (PostgreSQL refuses root). Sets postgres_conninfo
# and postgres_bin; stop it with stop_postgres DIR.
start_postgres() {
  local dir=$1 port attempt
  postgres_bin=${POSTGRES_BIN:-/usr/lib/postgresql/15/bin}
  local -a as_owner=()
  mkdir -p "$dir"
  if [[ $(id -u) -eq 0 ]]; then
    as_owner=(runuser -u postgres --)
    chown postgres "$dir"
    chmod 755 "$(dirname "$dir")"
  fi
  "${as_owner[@]}" "$postgres_bin/initdb" -D "$dir/data" -U postgres --auth=trust \
    --no-instructions >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
  for attempt in $(seq 1 20); do
    port=$(( 20000 + RANDOM % 40000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
    if "${as_owner[@]}" "$postgres_bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w \
         -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=on -c synchronous_commit=on -c full_page_writes=on" \
         start >/dev/null; then
      postgres_conninfo="host=127.0.0.1 port=$port dbname=postgres user=postgres"
      return 0
    fi
  done
  echo "postgres did not start" >&2
  cat "$dir/postgres.log" >&2
  return 1
}

# stop_postgres DIR: stops the server start_postgres started in DIR, if any.
stop_postgres() {
  local dir=$1
  [[ -f $dir/data/postmaster.pid ]] || return 0
  local -a as_owner=()
  if [[ $(id -u) -eq 0 ]]; then as_owner=(runuser -u postgres --); fi
  "${as_owner[@]}" "${postgres_bin:-/usr/lib/postgresql/15/bin}/pg_ctl" -D "$dir/data" -m fast \
    -w stop >/dev/null 2>&1 || true
}
