#!/bin/sh
# Whether DATA_DIR (a folder of this machine) is the folder Redis sees as SERVER_DIR in its
# container (`CONFIG GET dir`): a marker written here must be read back there. Run by
# redis-restore.yaml before it stops anything, so a wrong `data_dir` changes nothing.
#
#   same-folder.sh DATA_DIR SERVER_DIR SERVICE COMPOSE…   (COMPOSE: docker-compose, or docker compose)
set -u
data=$1 server_dir=$2 service=$3
shift 3
marker=".flow-restore-check-${FLOW_RUN_ID:-$$}"
if ! echo "$marker" >"$data/$marker" 2>/dev/null; then
  echo "cannot write in $data (the restore must write there)" >&2
  exit 1
fi
seen=$("$@" exec -T "$service" cat "$server_dir/$marker" 2>/dev/null)
rm -f "$data/$marker"
if [ "$seen" != "$marker" ]; then
  echo "$data is not the folder Redis sees as $server_dir (a file written here is not there in the container): pass -p data_dir=<the host side of its bind mount>" >&2
  exit 1
fi
echo "$data is the container's $server_dir"
