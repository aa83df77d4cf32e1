# Shared by the benchmark scripts (source it): starts billingd in the
# background and waits for the address it announces.

# start_billingd BILLINGD LOG ARGS...: sets server_pid and address.
start_billingd() {
  local billingd=$1 log=$2
  shift 2
  # Benchmarks measure the service, not auth: the explicit dev mode.
  "$billingd" --listen=127.0.0.1:0 --insecure-no-auth "$@" 2>"$log" &
  server_pid=$!
  address=
  for _ in $(seq 1 300); do
    address=$(grep -o 'listening on [0-9.]*:[0-9]*' "$log" | head -1 | cut -d' ' -f3 || true)
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
