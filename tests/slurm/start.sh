#!/usr/bin/env bash
# Start a single-node SLURM cluster on localhost (root, no systemd, no cgroups) with
# accounting via slurmdbd + MariaDB, account `research`, partition `debug`.
# Idempotent: daemons already alive (per their pid files) are left alone.
# State, logs, pids and the MariaDB datadir live under $KERASGRID_SLURM_DIR.
# Stop with tests/slurm/stop.sh.
set -euo pipefail
S=${KERASGRID_SLURM_DIR:-/tmp/kerasgrid-slurm}
DBPORT=3307   # not 3306, so a system MariaDB (e.g. started by the Debian postinst) cannot clash

# alive PIDFILE COMM: pid file names a live process running COMM (guards against pid reuse)
alive() { local p; p=$(cat "$1" 2>/dev/null) && [ -n "$p" ] && [ "$(cat /proc/"$p"/comm 2>/dev/null)" = "$2" ]; }
wait_for() { # wait_for WHAT CMD...: poll CMD for up to 60 s
  local what=$1; shift
  for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "start.sh: timed out waiting for $what (logs in $S/log, $S/munge)" >&2; return 1
}
all_alive() {
  alive $S/munge/munged.pid munged && alive $S/mariadb/mariadbd.pid mariadbd &&
  alive $S/slurmdbd.pid slurmdbd && alive $S/slurmctld.pid slurmctld && alive $S/slurmd.pid slurmd
}
if all_alive; then echo "start.sh: SLURM already running (state in $S)"; exit 0; fi

# 0) packages, only if missing. policy-rc.d (exit 101) stops postinsts from starting daemons.
PKGS="slurm-wlm munge slurmdbd mariadb-server"
missing=$(for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || echo "$p"; done)
if [ -n "$missing" ]; then
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

NODE=$(hostname -s)   # slurmd insists that NodeName matches its short hostname
CPUS=$(nproc)
# Jobs ask for e.g. mem_mb=2000; slurmd drains the node if RealMemory exceeds the real RAM.
MEM=$(awk '/MemTotal/ {m=int($2/1024*0.8); print (m < 16000 ? m : 16000)}' /proc/meminfo)
mkdir -p $S/state $S/spool $S/log $S/munge $S/mariadb /run/munge /etc/slurm
chown munge:munge $S/munge /run/munge; chown mysql:mysql $S/mariadb
chmod 700 $S/munge

# 1) munge. Debian's postinst normally creates the key; create it if absent.
[ -s /etc/munge/munge.key ] || runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
if ! alive $S/munge/munged.pid munged; then
  runuser -u munge -- /usr/sbin/munged --pid-file=$S/munge/munged.pid --log-file=$S/munge/munged.log
fi
wait_for munge bash -c 'munge -n | unmunge'

# 2) MariaDB with a private datadir; --no-defaults ignores /etc/mysql (which points at /var/lib/mysql).
DB=$S/mariadb
SQL="mariadb --no-defaults --socket=$DB/mariadbd.sock -u root"
if [ ! -d $DB/data/mysql ]; then   # first start: initialise; root logs in via unix_socket auth
  mariadb-install-db --no-defaults --user=mysql --datadir=$DB/data --skip-test-db \
    --auth-root-authentication-method=socket >$S/log/mariadb-install.log 2>&1
fi
if ! alive $DB/mariadbd.pid mariadbd; then
  setsid /usr/sbin/mariadbd --no-defaults --user=mysql --datadir=$DB/data --socket=$DB/mariadbd.sock \
    --pid-file=$DB/mariadbd.pid --bind-address=127.0.0.1 --port=$DBPORT \
    >>$S/log/mariadb.log 2>&1 </dev/null &
fi
wait_for mariadb $SQL -e 'select 1'
$SQL -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmpw';
         GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"

# 3) configs. Must be at /etc/slurm: the plugin's job step strips SLURM_* (incl. SLURM_CONF).
cat >/etc/slurm/slurm.conf <<CONF
ClusterName=kerasgrid
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
# no cgroups on these machines
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
# keep finished jobs visible to squeue/scontrol for status checks
MinJobAge=600
SlurmdTimeout=30
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${MEM} State=UNKNOWN
PartitionName=debug Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP
CONF
cat >/etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=$S/slurmdbd.pid
LogFile=$S/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DBPORT
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=slurmpw
CONF
chmod 600 /etc/slurm/slurmdbd.conf   # slurmdbd refuses a world-readable config

# 4) daemons (each daemonises itself and writes its pid file)
alive $S/slurmdbd.pid slurmdbd || slurmdbd
wait_for slurmdbd sacctmgr -n list cluster
# the cluster must exist in the database before slurmctld registers with it
sacctmgr -n -P list cluster format=cluster | grep -qx kerasgrid || sacctmgr -i add cluster kerasgrid >/dev/null
sacctmgr -n -P list account research format=account | grep -qx research ||
  sacctmgr -i add account research Description=research Organization=kerasgrid >/dev/null
sacctmgr -n -P list assoc user=root account=research format=user | grep -qx root ||
  sacctmgr -i add user root Account=research DefaultAccount=research >/dev/null
alive $S/slurmctld.pid slurmctld || slurmctld
alive $S/slurmd.pid slurmd || slurmd
# idle on a fresh cluster; mixed/allocated if jobs survived a partial restart (idle* = not responding)
wait_for "node $NODE idle" bash -c "sinfo -h -n $NODE -o %T | grep -qxE 'idle|mixed|allocated'"
sinfo
