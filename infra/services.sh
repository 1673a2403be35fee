#!/usr/bin/env bash
# Make sure the real services the test suites use are up: Redis, NATS (JetStream) and PostgreSQL on
# loopback.
#
# For each service: if something already answers at its address, do nothing. Otherwise, if the address
# is loopback and the server binary is installed, start it; then wait (SERVICES_TIMEOUT_S, default 20 s)
# until it answers. Addresses come from REDIS_URL / NATS_URL (defaults redis://127.0.0.1:6379 and
# nats://127.0.0.1:4222, as in tests/support/services.ts). KURRENTDB_URL, when set, is waited for but
# never started (use infra/compose.yaml).
#
# A service is required when CI=true (the suites then fail without it, so fail here first with a clearer
# message) or when its URL is set explicitly; a required service that stays unreachable exits 1.
# Otherwise a missing service is a warning: its suites skip loudly.
set -euo pipefail

TIMEOUT_S="${SERVICES_TIMEOUT_S:-20}"
IN_CI=false
case "${CI:-}" in true | 1) IN_CI=true ;; esac

say() { printf 'services: %s\n' "$*" >&2; }

# host and port of a URL such as redis://user:pw@host:6379/0 or kurrentdb://[::1]:2113?tls=false
# (the first host of a comma-separated list). Prints "host port".
host_port() {
  local url=$1 default_port=$2 rest host port
  rest=${url#*://}
  rest=${rest%%[/?#]*}
  rest=${rest##*@}
  rest=${rest%%,*}
  if [[ $rest == \[* ]]; then
    host=${rest%%]*}
    host=${host#[}
    port=${rest##*]}
    port=${port#:}
  elif [[ $rest == *:* ]]; then
    host=${rest%%:*}
    port=${rest##*:}
  else
    host=$rest
    port=
  fi
  printf '%s %s\n' "${host:-127.0.0.1}" "${port:-$default_port}"
}

# True when the service at host:port answers in its own protocol: Redis replies to PING (+PONG, or
# -NOAUTH when it wants a password), NATS greets with INFO. A bare TCP connect is not enough, because
# some networks (proxies, sandboxes) accept connections to any address. Bounded by `timeout` when it
# exists, because a filtered remote port would otherwise hang the probe.
answers() {
  local host=$1 port=$2 protocol=$3 script
  case $protocol in
    redis) script='exec 3<>"/dev/tcp/$0/$1" && printf "PING\r\n" >&3 && IFS= read -r -t 2 reply <&3 &&
      [[ $reply == "+PONG"* || $reply == "-NOAUTH"* || $reply == "-WRONGPASS"* ]]' ;;
    nats) script='exec 3<>"/dev/tcp/$0/$1" && IFS= read -r -t 2 reply <&3 && [[ $reply == INFO* ]]' ;;
    # PostgreSQL answers an SSLRequest with one byte, S or N, before any authentication.
    postgres) script='exec 3<>"/dev/tcp/$0/$1" && printf "\x00\x00\x00\x08\x04\xd2\x16\x2f" >&3 && IFS= read -r -n 1 -t 2 reply <&3 &&
      [[ $reply == S || $reply == N ]]' ;;
    *) script='exec 3<>"/dev/tcp/$0/$1"' ;;
  esac
  if command -v timeout >/dev/null 2>&1; then
    timeout 3 bash -c "$script" "$host" "$port" 2>/dev/null
  else
    bash -c "$script" "$host" "$port" 2>/dev/null
  fi
}

is_loopback() {
  case $1 in localhost | ::1 | 127.*) return 0 ;; *) return 1 ;; esac
}

wait_until_answers() {
  local host=$1 port=$2 protocol=$3 deadline=$((SECONDS + TIMEOUT_S))
  until answers "$host" "$port" "$protocol"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# The address a server should listen on for a loopback URL host.
bind_address() {
  case $1 in localhost) echo 127.0.0.1 ;; *) echo "$1" ;; esac
}

start_redis() {
  local host=$1 port=$2 bind
  command -v redis-server >/dev/null 2>&1 || return 1
  bind=$(bind_address "$host")
  # This machine's own layout (Debian package dirs) for the default address; a plain daemon elsewhere.
  if [[ $bind == 127.0.0.1 && $port == 6379 && -d /var/lib/redis && -w /var/log/redis ]]; then
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
  else
    redis-server --daemonize yes --bind "$bind" --port "$port" --save '' --appendonly no \
      --logfile "${TMPDIR:-/tmp}/planline-redis-$port.log"
  fi
}

start_nats() {
  local host=$1 port=$2 bind log store
  bind=$(bind_address "$host")
  if [[ $bind == 127.0.0.1 && $port == 4222 && -x /usr/sbin/nats-server && -d /var/lib/nats-server ]] &&
    command -v start-stop-daemon >/dev/null 2>&1; then
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
      -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  else
    command -v nats-server >/dev/null 2>&1 || return 1
    # Own store dir per port: two servers sharing one JetStream store would corrupt it.
    log="${TMPDIR:-/tmp}/planline-nats-$port.log"
    store="${TMPDIR:-/tmp}/planline-nats-$port"
    nohup nats-server -js -a "$bind" -p "$port" -sd "$store" >"$log" 2>&1 &
    disown || true
  fi
}

start_postgres() {
  local host=$1 port=$2
  # This machine's Debian cluster for the default address; elsewhere start it yourself.
  [[ $(bind_address "$host") == 127.0.0.1 && $port == 5432 ]] || return 1
  command -v pg_ctlcluster >/dev/null 2>&1 && [[ -d /etc/postgresql ]] || return 1
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
}

failures=0

# ensure NAME URL DEFAULT_PORT PROTOCOL EXPLICIT START_FN
ensure() {
  local name=$1 url=$2 default_port=$3 protocol=$4 explicit=$5 start=$6 host port required=false
  read -r host port < <(host_port "$url" "$default_port")
  [[ $IN_CI == true || $explicit == true ]] && required=true
  # TLS endpoints do not speak plaintext: for those a TCP connect is the best check we have here.
  [[ $url == rediss://* ]] && protocol=tcp

  if answers "$host" "$port" "$protocol"; then
    say "$name already up at $host:$port"
    return 0
  fi

  if [[ -n $start ]] && is_loopback "$host"; then
    if "$start" "$host" "$port"; then
      say "$name started on $host:$port, waiting up to ${TIMEOUT_S}s"
    elif [[ $required == false ]]; then
      say "warning: $name is not running at $host:$port and no server is installed to start; its test suites will be skipped"
      return 0
    else
      say "$name is not running at $host:$port and could not be started here; waiting up to ${TIMEOUT_S}s"
    fi
  elif [[ -z $start ]]; then
    say "$name is not answering at $host:$port; waiting up to ${TIMEOUT_S}s (this script does not start it: see infra/compose.yaml)"
  else
    say "$name is not answering at $host:$port; waiting up to ${TIMEOUT_S}s (not started here: not a loopback address)"
  fi

  if wait_until_answers "$host" "$port" "$protocol"; then
    say "$name is up at $host:$port"
  elif [[ $required == true ]]; then
    say "ERROR: $name is required but unreachable at $host:$port after ${TIMEOUT_S}s ($url)"
    failures=$((failures + 1))
  else
    say "warning: $name unreachable at $host:$port; its test suites will be skipped"
  fi
}

ensure Redis "${REDIS_URL:-redis://127.0.0.1:6379}" 6379 redis "${REDIS_URL:+true}" start_redis
ensure NATS "${NATS_URL:-nats://127.0.0.1:4222}" 4222 nats "${NATS_URL:+true}" start_nats
ensure PostgreSQL "${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}" 5432 postgres "${POSTGRES_URL:+true}" start_postgres
if [[ -n ${KURRENTDB_URL:-} ]]; then
  ensure KurrentDB "$KURRENTDB_URL" 2113 tcp true ''
fi

if ((failures > 0)); then
  say "$failures required service(s) unreachable; see the messages above"
  exit 1
fi
