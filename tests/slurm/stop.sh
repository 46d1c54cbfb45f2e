#!/usr/bin/env bash
# Stop the daemons started by tests/slurm/start.sh, by their pid files only (never by name),
# and wait for them to exit. Safe when nothing runs. State (incl. the database) is kept.
set -euo pipefail
S=${KERASGRID_SLURM_DIR:-/tmp/kerasgrid-slurm}

# stop PIDFILE COMM: TERM the process if the pid file names a live COMM (guards against pid
# reuse), wait up to 30 s, then KILL.
stop() {
  local p; p=$(cat "$1" 2>/dev/null) || return 0
  if [ -n "$p" ] && [ "$(cat /proc/"$p"/comm 2>/dev/null)" = "$2" ]; then
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 150); do [ -e /proc/"$p" ] || break; sleep 0.2; done
    if [ -e /proc/"$p" ]; then echo "stop.sh: $2 ($p) ignored TERM, killing" >&2; kill -KILL "$p" || true; fi
  fi
  rm -f "$1"
}
# reverse start order: clients of a daemon go first
stop $S/slurmd.pid slurmd
stop $S/slurmctld.pid slurmctld
stop $S/slurmdbd.pid slurmdbd
stop $S/mariadb/mariadbd.pid mariadbd
stop $S/munge/munged.pid munged
echo "stop.sh: stopped (state kept in $S)"
