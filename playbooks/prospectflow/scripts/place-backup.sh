#!/bin/sh
# Puts a backup in place of a stopped Redis's files — the copy of seed 001's "Restore from
# Backup" — in its data folder as this machine sees it (infra/redis/data, the container's
# /data). Called by redis-restore.yaml once Redis is stopped:
#
#   place-backup.sh DATA_DIR DBFILENAME AOF(on|off) AOF_DIRNAME AOF_FILENAME BACKUP [AOF_COPY]
#
# Nothing live is touched until everything is staged: the backup is copied into a folder
# beside the live files first, so a copy that fails (a full disk, a path that is wrong)
# changes nothing. Then the live files are moved aside — kept as NAME.before-restore-STAMP —
# and the staged ones renamed in: renames within one folder, which need no space; one that
# fails puts back what was moved. With AOF on, Redis 7 loads appendonlydir/ and ignores
# dump.rdb, so the AOF files are replaced too: by the backup's AOF copy (redis.backup's
# `<name>.aof`), or else by a fresh AOF whose base is the backup's RDB (Redis 7's AOF base
# file is an RDB file).
#
# What it did goes to stdout; a failure is one line on stderr saying what failed, exit 1.
set -u

data=$1 dbfile=$2 aof=$3 aofdir=$4 aofname=$5 backup=$6 aof_copy=${7:-}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
staging="$data/.restore-$stamp-$$"
moved_aside=""
moved_in=""

fail() {
  # Undo the renames done so far (newest first), then drop the staging folder.
  for name in $moved_in; do mv "$data/$name" "$staging/$name" 2>/dev/null; done
  for name in $moved_aside; do mv "$data/$name.before-restore-$stamp" "$data/$name" 2>/dev/null; done
  rm -rf "$staging"
  echo "$*" >&2
  exit 1
}

# `cp` and `mv` say why they failed; keep only that, without the program's name.
run() {
  what=$1
  shift
  if ! out=$("$@" 2>&1); then
    fail "$what: ${out#*: }"
  fi
}

[ -d "$data" ] || fail "the data folder $data does not exist"
[ -f "$backup" ] || fail "the backup $backup is not a file"
run "cannot create a staging folder in $data" mkdir -m 700 "$staging"
run "cannot copy $backup to $data" cp "$backup" "$staging/$dbfile"
echo "staged $backup as $dbfile"
replace="$dbfile"
if [ "$aof" = on ]; then
  if [ -d "$aof_copy" ]; then
    run "cannot copy the AOF files $aof_copy to $data" cp -R "$aof_copy" "$staging/$aofdir"
    echo "staged the AOF files of $aof_copy as $aofdir/"
    replace="$replace $aofdir"
  elif [ -n "$aof_copy" ]; then
    # A single appendonly.aof (Redis before 7): Redis 7 upgrades it when no AOF folder exists.
    run "cannot copy the AOF file $aof_copy to $data" cp "$aof_copy" "$staging/$aofname"
    echo "staged $aof_copy as $aofname (Redis 7 turns it into $aofdir/ as it starts)"
    replace="$replace $aofname"
    [ -e "$data/$aofdir" ] && replace="$replace $aofdir"
  else
    run "cannot create $aofdir in $data" mkdir -m 700 "$staging/$aofdir"
    run "cannot copy $backup to $data" cp "$backup" "$staging/$aofdir/$aofname.1.base.rdb"
    printf 'file %s seq 1 type b\n' "$aofname.1.base.rdb" >"$staging/$aofdir/$aofname.manifest" ||
      fail "cannot write the AOF manifest in $data"
    echo "staged a fresh AOF in $aofdir/ whose base is the backup"
    replace="$replace $aofdir"
  fi
fi
# The server's user must own what it loads (a root shell restoring into a redis-owned folder;
# the redis image's entrypoint also does this as it starts).
chown -R --reference="$data" "$staging" 2>/dev/null || true

for name in $replace; do
  if [ -e "$data/$name" ] || [ -L "$data/$name" ]; then
    run "cannot move $data/$name aside" mv "$data/$name" "$data/$name.before-restore-$stamp"
    moved_aside="$name $moved_aside"
    echo "kept the old $name as $name.before-restore-$stamp"
  fi
  if [ -e "$staging/$name" ]; then
    run "cannot move the staged $name into $data" mv "$staging/$name" "$data/$name"
    moved_in="$name $moved_in"
  fi
done
rm -rf "$staging"
echo "placed the backup in $data"
