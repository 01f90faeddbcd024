#!/usr/bin/env bash
# scripts/local_slurm.sh - a single-node SLURM cluster on this machine, for the sweep's integration
# tests and CI (Debian 12 / Slurm 22.05, run as root, works without systemd).
#
#   bash scripts/local_slurm.sh start    install (if needed), configure, start, wait until idle, smoke job
#   bash scripts/local_slurm.sh stop     cancel all jobs, stop the daemons by pid file, remove pid files
#   bash scripts/local_slurm.sh status   scontrol ping + sinfo (+ which daemons are alive)
#   bash scripts/local_slurm.sh ping     exit 0 iff the controller answers (quiet)
#   bash scripts/local_slurm.sh restart  stop + start
#
# `start` is idempotent: when everything already runs with the same config it only checks the node and
# runs the smoke job (~3 s). When the generated slurm.conf/gres.conf changes, slurmctld+slurmd restart.
#
# Environment knobs (start):
#   LOCAL_SLURM_ACCOUNTING=1     1: slurmdbd + MariaDB so that `sacct` works. submitit reads job states
#                                through sacct; without it a job cancelled from outside (scancel, node
#                                failure) never writes a result and `job.result()` blocks forever.
#                                0: accounting_storage/none (fewer packages; sacct fails).
#   LOCAL_SLURM_FAKE_GPUS=0      N>0: advertise N fake `gpu` GRES (char devices cloned from /dev/null) so that
#                                --gres=gpu:K / --gpus=K / submitit gpus_per_node=K (K<=N) are accepted.
#                                0: any GPU request is rejected at submit ("Invalid generic resource").
#   LOCAL_SLURM_PARTITION=debug  name of the (only, default) partition.
#   LOCAL_SLURM_WAIT_S=60        how long to wait for the node to become idle.
#   LOCAL_SLURM_SMOKE=1          1: run one `true` job at the end and require COMPLETED.
#
# Notes for users of this cluster (submitit side):
#   * Slurm rounds time limits up to whole minutes and checks them periodically: a TIMEOUT arrives
#     60-90 s after the limit, whatever the limit.
#   * submitit asks for `--signal=USR2@<slurm_signal_delay_s>` (default 90 s). With a short timeout_min
#     (1-2 min) that is at or beyond the whole limit, so the job gets USR2 right away and is ended as
#     "timed-out and not checkpointable". Pass a small slurm_signal_delay_s (e.g. 15) with short timeouts.
#   * submitit's AutoExecutor picks "slurm" whenever `srun` is on PATH, even if no daemon runs. Probe the
#     cluster with `scontrol ping` (this script's `ping`) instead.
#   * Memory limits are not enforced (no cgroup plugin; proctrack/linuxproc + task/none).
#
# Pid files: /run/munge/munged.pid /run/mysqld/mysqld.pid /run/slurmdbd.pid /run/slurmctld.pid /run/slurmd.pid
# Logs:      /var/log/slurm/{slurmctld,slurmd,slurmdbd,mariadbd}.log, /var/log/slurm/jobcomp.log
set -euo pipefail

ACCOUNTING="${LOCAL_SLURM_ACCOUNTING:-1}"
FAKE_GPUS="${LOCAL_SLURM_FAKE_GPUS:-0}"
PARTITION="${LOCAL_SLURM_PARTITION:-debug}"
WAIT_S="${LOCAL_SLURM_WAIT_S:-60}"
SMOKE="${LOCAL_SLURM_SMOKE:-1}"
DB_PASS="slurmdbpass"   # local-only database: mariadbd runs with --skip-networking (unix socket only)
CONF=/etc/slurm/slurm.conf
LOGDIR=/var/log/slurm

log() { echo "[local_slurm $(date +%H:%M:%S)] $*"; }
die() {  # die MESSAGE [LOGFILE]: say what failed (+ the log's tail) and exit 1
  echo "[local_slurm] FAILED: $1" >&2
  if [ -n "${2:-}" ] && [ -s "$2" ]; then echo "--- last lines of $2:" >&2; tail -n 15 "$2" >&2; fi
  exit 1
}
need_root() { [ "$(id -u)" = 0 ] || die "'$1' must run as root (it installs packages and starts daemons)"; }

# pid_alive PIDFILE COMM: print the pid and return 0 iff the pid in PIDFILE is alive and named COMM
# (the name check guards against a stale pid file whose pid was reused by another process).
pid_alive() {
  local pf="$1" comm="$2" pid
  [ -s "$pf" ] || return 1
  pid="$(tr -dc '0-9' < "$pf")"
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || return 1
  echo "$pid"
}
# stop_pid PIDFILE COMM [quiet]: SIGTERM the recorded pid, wait up to 30 s, then SIGKILL; remove the pid file.
stop_pid() {
  local pid i
  if ! pid="$(pid_alive "$1" "$2")"; then rm -f "$1"; return 0; fi
  [ -n "${3:-}" ] || log "stopping $2 (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 150); do [ -d "/proc/$pid" ] || break; sleep 0.2; done
  if [ -d "/proc/$pid" ]; then
    log "$2 (pid $pid) ignored SIGTERM for 30 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true; sleep 0.5
  fi
  # slurmctld/slurmdbd drop root and leave their pid files behind; a stale /run/slurmctld.pid makes the
  # slurmctld package's prerm run scancel against a dead controller and fail on apt-get remove.
  rm -f "$1"
}
# wait_for SECONDS WHAT LOGFILE CMD...: poll CMD every 0.2 s until it succeeds, or die.
wait_for() {
  local secs="$1" what="$2" logf="$3" i; shift 3
  for i in $(seq 1 $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "timed out after ${secs}s waiting for: $what" "$logf"
}
# ctl_up: the controller answers. Never run a Slurm client without slurm.conf: it would try configless
# mode (DNS SRV lookup, "fetch_config: DNS SRV lookup failed").
ctl_up() {
  [ -r "$CONF" ] && command -v scontrol >/dev/null 2>&1 || return 1
  timeout 15 scontrol ping 2>/dev/null | grep -q 'is UP'
}

# ====================================================================== start
cmd_start() {
  need_root start
  local t0=$SECONDS p missing="" PKGS="slurm-wlm munge"
  [ "$ACCOUNTING" = 1 ] && PKGS="$PKGS slurmdbd mariadb-server"
  case "$FAKE_GPUS" in ''|*[!0-9]*) die "LOCAL_SLURM_FAKE_GPUS must be a number, got '$FAKE_GPUS'";; esac

  # ---- 1. packages (no systemd here: policy-rc.d keeps postinst from starting services; we start them below)
  for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    command -v apt-get >/dev/null || die "packages missing ($missing) and no apt-get (Debian 12 expected)"
    log "installing:$missing (apt, --no-install-recommends)"
    local aptlog; aptlog="$(mktemp /tmp/local_slurm_apt.XXXXXX)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >"$aptlog" 2>&1 || die "apt-get update" "$aptlog"
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >>"$aptlog" 2>&1 || die "apt-get install$missing" "$aptlog"
    rm -f "$aptlog"
  fi

  # ---- 2. users, key, directories
  local HOST; HOST="$(hostname -s)"
  getent passwd slurm >/dev/null || die "user 'slurm' missing (comes with slurm-wlm-basic-plugins)"
  getent passwd munge >/dev/null || die "user 'munge' missing (comes with munge)"
  install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
  install -d -o munge -g munge -m 0711 /var/lib/munge
  install -d -o munge -g munge -m 0755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating munge key"
    mungekey --create --keyfile=/etc/munge/munge.key --force
  fi
  chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
  install -d -o root -g root -m 0755 /etc/slurm
  install -d -o slurm -g slurm -m 0755 /var/lib/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd "$LOGDIR"

  # ---- 3. slurm.conf (+ gres.conf) for this host
  # Real CPUs/RealMemory from `slurmd -C`; it needs a throw-away config (see ctl_up about configless mode).
  local probe nodeline nodeparams
  probe="$(mktemp /tmp/local_slurm_probe.XXXXXX)"
  printf 'ClusterName=probe\nSlurmctldHost=%s(127.0.0.1)\n' "$HOST" > "$probe"
  nodeline="$(SLURM_CONF="$probe" /usr/sbin/slurmd -C 2>&1 | head -n1 || true)"; rm -f "$probe"
  case "$nodeline" in NodeName=*) ;; *) die "slurmd -C gave: $nodeline" ;; esac
  nodeparams="${nodeline#NodeName=* }"   # CPUs=.. Boards=.. SocketsPerBoard=.. ... RealMemory=..

  local gresline="" grestypes="" newgres="" i
  if [ "$FAKE_GPUS" -gt 0 ]; then
    # Slurm 22.05 drops count-only gpu GRES ("Removing file-less GPU") and wants char/block devices.
    install -d -m 0755 /run/fake-gpu
    for i in $(seq 0 $((FAKE_GPUS - 1))); do
      [ -c "/run/fake-gpu/gpu$i" ] || mknod -m 0666 "/run/fake-gpu/gpu$i" c 1 3
    done
    grestypes="GresTypes=gpu"; gresline=" Gres=gpu:$FAKE_GPUS"
    newgres="NodeName=$HOST Name=gpu File=/run/fake-gpu/gpu[0-$((FAKE_GPUS - 1))]"
  fi
  local acct
  if [ "$ACCOUNTING" = 1 ]; then
    acct="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30"
  else
    acct="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
  fi
  local newconf
  newconf="$(cat <<EOF
# Generated by scripts/local_slurm.sh: single-node local test cluster. Do not edit; rerun the script.
ClusterName=localcluster
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=slurm
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups (mixed v1/v2 mounts in VMs/containers): plain process tracking, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# reject (instead of pending forever) jobs that ask for more than the node has
EnforcePartLimits=ALL
JobCompType=jobcomp/filetxt
JobCompLoc=$LOGDIR/jobcomp.log
$acct
InactiveLimit=0
KillWait=5
MinJobAge=300
Waittime=0
$grestypes
NodeName=$HOST NodeAddr=127.0.0.1 $nodeparams$gresline State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
)"
  local changed=0
  if [ "$(cat "$CONF" 2>/dev/null)" != "$newconf" ]; then
    printf '%s\n' "$newconf" > "$CONF"; changed=1
  fi
  if [ "$(cat /etc/slurm/gres.conf 2>/dev/null)" != "$newgres" ]; then
    if [ -n "$newgres" ]; then printf '%s\n' "$newgres" > /etc/slurm/gres.conf; else rm -f /etc/slurm/gres.conf; fi
    changed=1
  fi
  chmod 0644 "$CONF"

  # ---- 4. munged (daemonizes itself)
  if ! pid_alive /run/munge/munged.pid munged >/dev/null; then
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged </dev/null >>/var/log/munge/munged.out 2>&1 \
      || die "munged did not start" /var/log/munge/munged.log
  fi
  wait_for 20 "munge credential round trip (munge -n | unmunge)" /var/log/munge/munged.log \
    sh -c 'munge -n | unmunge'

  # ---- 5. MariaDB + slurmdbd (accounting, for sacct)
  if [ "$ACCOUNTING" = 1 ]; then
    install -d -o mysql -g mysql -m 0755 /run/mysqld
    if ! pid_alive /run/mysqld/mysqld.pid mariadbd >/dev/null; then
      log "starting mariadbd (unix socket only)"
      [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null 2>&1 \
        || die "mariadb-install-db"
      # mariadbd does not daemonize itself
      nohup setsid /usr/sbin/mariadbd --user=mysql --skip-networking \
        --pid-file=/run/mysqld/mysqld.pid --socket=/run/mysqld/mysqld.sock \
        --innodb-buffer-pool-size=256M --innodb-lock-wait-timeout=900 \
        </dev/null >>"$LOGDIR/mariadbd.log" 2>&1 &
    fi
    wait_for 60 "mariadb answering on /run/mysqld/mysqld.sock" "$LOGDIR/mariadbd.log" \
      mariadb-admin --socket=/run/mysqld/mysqld.sock ping
    wait_for 10 "mariadbd pid file" "$LOGDIR/mariadbd.log" pid_alive /run/mysqld/mysqld.pid mariadbd
    mariadb --socket=/run/mysqld/mysqld.sock -u root >/dev/null <<EOF || die "creating the slurm_acct_db database/user"
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
EOF
    local newdbd="AuthType=auth/munge
DbdHost=$HOST
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=slurm
DebugLevel=info
LogFile=$LOGDIR/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db"
    if [ "$(cat /etc/slurm/slurmdbd.conf 2>/dev/null)" != "$newdbd" ]; then
      printf '%s\n' "$newdbd" > /etc/slurm/slurmdbd.conf
      stop_pid /run/slurmdbd.pid slurmdbd
    fi
    # slurmdbd refuses a config that is not owned by SlurmUser with mode 600
    chown slurm:slurm /etc/slurm/slurmdbd.conf; chmod 0600 /etc/slurm/slurmdbd.conf
    if ! pid_alive /run/slurmdbd.pid slurmdbd >/dev/null; then
      log "starting slurmdbd"
      /usr/sbin/slurmdbd </dev/null >>"$LOGDIR/slurmdbd.out" 2>&1 || die "slurmdbd did not start" "$LOGDIR/slurmdbd.log"
    fi
    wait_for 30 "slurmdbd pid file" "$LOGDIR/slurmdbd.log" pid_alive /run/slurmdbd.pid slurmdbd
    wait_for 30 "slurmdbd answering (sacctmgr show cluster)" "$LOGDIR/slurmdbd.log" sacctmgr -n show cluster
  fi

  # ---- 6. slurmctld + slurmd (both daemonize themselves)
  if [ "$changed" = 1 ] && { pid_alive /run/slurmctld.pid slurmctld >/dev/null || pid_alive /run/slurmd.pid slurmd >/dev/null; }; then
    log "config changed: restarting slurmctld and slurmd"
    stop_pid /run/slurmd.pid slurmd
    stop_pid /run/slurmctld.pid slurmctld
  fi
  if ! pid_alive /run/slurmctld.pid slurmctld >/dev/null; then
    log "starting slurmctld"
    /usr/sbin/slurmctld </dev/null >>"$LOGDIR/slurmctld.out" 2>&1 || die "slurmctld did not start" "$LOGDIR/slurmctld.log"
  fi
  wait_for 30 "slurmctld pid file" "$LOGDIR/slurmctld.log" pid_alive /run/slurmctld.pid slurmctld
  wait_for 30 "controller answering (scontrol ping)" "$LOGDIR/slurmctld.log" ctl_up
  if ! pid_alive /run/slurmd.pid slurmd >/dev/null; then
    log "starting slurmd"
    /usr/sbin/slurmd </dev/null >>"$LOGDIR/slurmd.out" 2>&1 || die "slurmd did not start" "$LOGDIR/slurmd.log"
  fi
  wait_for 30 "slurmd pid file" "$LOGDIR/slurmd.log" pid_alive /run/slurmd.pid slurmd

  # ---- 7. wait until the node is idle (resume it if an earlier bad config drained it: that state
  #         is kept in StateSaveLocation across restarts, and ReturnToService=2 does not clear it)
  local st="" resumed=0
  node_state() { sinfo -h -N -n "$HOST" -o %T 2>/dev/null | head -n1; }
  for i in $(seq 1 $((WAIT_S * 5))); do
    st="$(node_state)"
    case "$st" in
      idle|mixed|allocated|completing) break ;;
      *drain*|*inval*|down*|*fail*)
        if [ "$resumed" = 0 ]; then
          log "node $HOST is '$st': resuming it"
          scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true; resumed=1
        fi ;;
    esac
    sleep 0.2
  done
  case "$st" in
    idle|mixed|allocated|completing) ;;
    *) sinfo -N -o '%N %T %E' >&2 || true; die "node $HOST is '$st', not idle, after ${WAIT_S}s" "$LOGDIR/slurmd.log" ;;
  esac

  # ---- 8. smoke job (poll scontrol: `sbatch --wait` backs off and adds ~7 s)
  if [ "$SMOKE" = 1 ]; then
    local jid jst=""
    jid="$(sbatch --parsable -p "$PARTITION" -t 1 -o /dev/null -e /dev/null -J local-slurm-smoke --wrap true 2>&1)" \
      || die "smoke job: sbatch said: $jid"
    for i in $(seq 1 300); do   # 60 s: the node may still be busy with other users' jobs
      jst="$(scontrol -o show job "$jid" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)"
      case "$jst" in PENDING|CONFIGURING|RUNNING|COMPLETING|"") sleep 0.2 ;; *) break ;; esac
    done
    [ "$jst" = COMPLETED ] || die "smoke job $jid ended as '${jst:-?}' (expected COMPLETED)" "$LOGDIR/slurmd.log"
  fi
  log "ready in $((SECONDS - t0))s: node $HOST $st, partition $PARTITION, accounting=$ACCOUNTING, fake_gpus=$FAKE_GPUS$( [ "$SMOKE" = 1 ] && echo ", smoke job ok")"
}

# ====================================================================== stop
cmd_stop() {
  need_root stop
  local t0=$SECONDS i ids
  # Each job's slurmstepd is re-parented to PID 1, not kept under slurmd: cancel the jobs first.
  if pid_alive /run/slurmctld.pid slurmctld >/dev/null && [ -r "$CONF" ]; then
    ids="$(timeout 15 squeue -h -o %i 2>/dev/null || true)"
    if [ -n "$ids" ]; then
      log "cancelling $(echo "$ids" | wc -w) job(s)"
      # shellcheck disable=SC2086
      scancel --full --quiet $ids 2>/dev/null || true
      for i in $(seq 1 100); do
        [ -z "$(timeout 15 squeue -h -t running,completing -o %i 2>/dev/null)" ] && break; sleep 0.3
      done
    fi
  fi
  stop_pid /run/slurmd.pid slurmd
  stop_pid /run/slurmctld.pid slurmctld
  stop_pid /run/slurmdbd.pid slurmdbd
  stop_pid /run/mysqld/mysqld.pid mariadbd
  stop_pid /run/munge/munged.pid munged
  log "stopped in $((SECONDS - t0))s"
}

# ====================================================================== status / ping
cmd_status() {
  local d p pf alive=""
  for d in munged:/run/munge/munged.pid mariadbd:/run/mysqld/mysqld.pid slurmdbd:/run/slurmdbd.pid \
           slurmctld:/run/slurmctld.pid slurmd:/run/slurmd.pid; do
    pf="${d#*:}"; d="${d%%:*}"
    if p="$(pid_alive "$pf" "$d")"; then alive="$alive $d=$p"; else alive="$alive $d=-"; fi
  done
  echo "daemons:$alive"
  if ! command -v scontrol >/dev/null 2>&1; then echo "SLURM not installed"; return 1; fi
  if [ ! -r "$CONF" ]; then echo "no $CONF (never started here)"; return 1; fi
  timeout 15 scontrol ping 2>&1 | head -n1 || true   # (skip the 'RESTORE SLURMCTLD' banner)
  if ctl_up; then timeout 15 sinfo 2>&1; return 0; fi
  return 1
}
cmd_ping() { ctl_up; }

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_stop; cmd_start ;;
  status) cmd_status ;;
  ping) cmd_ping ;;
  *) echo "usage: bash $0 {start|stop|restart|status|ping}   (see the header for LOCAL_SLURM_* knobs)" >&2; exit 2 ;;
esac
