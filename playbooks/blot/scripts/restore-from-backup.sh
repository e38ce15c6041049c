#!/usr/bin/env bash
# Restores a Redis RDB snapshot on this host and starts Redis on it.
# Shipped with playbooks/blot/provision-and-restore.yaml, which uploads this folder and the
# snapshot (fetched from S3 by flow itself: the instance needs no AWS credentials) and runs:
#
#   restore-from-backup.sh DUMP.rdb [--dir DIR] [--port PORT] [--service NAME]
#
#   --dir      Redis's data folder, where dump.rdb goes (default /var/lib/redis)
#   --port     the port Redis listens on, checked with redis-cli afterwards (default 6379)
#   --service  the systemd unit of Redis (default redis): stopped, the dump installed
#              (owned by the unit's redis user when there is one), started again.
#              An empty value ('') runs no service manager: a redis-server of this script's
#              own is started daemonized on 127.0.0.1 with DIR as its folder (pid in
#              DIR/redis.pid; an earlier one of this script is shut down first) — what the
#              end-to-end tests and scripts/demo use on a machine without systemd.
#
# The file must be an RDB snapshot (it starts with "REDIS"); Redis must answer PING and be
# done loading within 120 s, or the script fails. Exit codes: 0 restored, 1 failed, 2 usage.
set -euo pipefail

usage() { echo 'usage: restore-from-backup.sh DUMP.rdb [--dir DIR] [--port PORT] [--service NAME]' >&2; exit 2; }
[ $# -ge 1 ] || usage
dump=$1; shift
dir=/var/lib/redis
port=6379
service=redis
while [ $# -gt 0 ]; do
  case $1 in
    --dir) dir=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --service) service=$2; shift 2 ;;
    *) usage ;;
  esac
done

[ -f "$dump" ] || { echo "no such file: $dump" >&2; exit 1; }
[ "$(head -c 5 "$dump")" = REDIS ] || { echo "$dump is not an RDB snapshot" >&2; exit 1; }
mkdir -p "$dir"

if [ -n "$service" ]; then
  echo "stopping $service"
  systemctl stop "$service"
  install -m 0640 "$dump" "$dir/dump.rdb"
  if id redis >/dev/null 2>&1; then chown redis:redis "$dir/dump.rdb"; fi
  echo "starting $service"
  systemctl start "$service"
else
  pidfile=$dir/redis.pid
  if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "stopping the redis-server of an earlier restore (pid $(cat "$pidfile"))"
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$(cat "$pidfile")" || true
    for _ in $(seq 50); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
  fi
  install -m 0600 "$dump" "$dir/dump.rdb"
  echo "starting redis-server on 127.0.0.1:$port in $dir"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --dbfilename dump.rdb \
    --appendonly no --save '' --daemonize yes --pidfile "$pidfile" \
    --logfile "$dir/redis.log"
fi

for _ in $(seq 240); do
  if [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] &&
     redis-cli -p "$port" info persistence 2>/dev/null | grep -q '^loading:0'; then
    echo "redis answers on port $port with $(redis-cli -p "$port" dbsize) keys"
    exit 0
  fi
  sleep 0.5
done
echo "redis did not answer on port $port within 120 s" >&2
exit 1
