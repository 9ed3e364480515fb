# Sourced by the Slurm tests: a real one-node Slurm (munge + slurmctld + slurmd) on this machine, set
# up for a Debian 12 box without systemd (proctrack/linuxproc, task/none, no cgroups).
# Everything of this cluster lives under $SLURM_TEST_DIR (its own slurm.conf, ports, spool, logs, pid
# files), so it never touches a site's Slurm; munge uses the system key and socket, and is stopped at
# the end only when this script started it.
#   slurm_up DIR        start; returns 77 (ctest's skip code) with a reason when it cannot
#   slurm_down          stop what slurm_up started (call it from an EXIT trap)
#   slurm_wait_done ID SECONDS   wait until job ID (every task of an array) has ended; prints its states

SLURM_TEST_DIR=
SLURM_TEST_STARTED_MUNGE=0

slurm_skip() {
  echo "SKIP: $*" >&2
  return 77
}

slurm_up() {
  SLURM_TEST_DIR=$1
  [[ $(id -u) -eq 0 ]] || { slurm_skip "the one-node Slurm needs root (daemons run as root, munge as munge)"; return; }
  local tool
  for tool in munged munge unmunge slurmctld slurmd sbatch scontrol squeue sinfo; do
    command -v "$tool" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin
    command -v "$tool" >/dev/null 2>&1 || { slurm_skip "'$tool' is missing: apt-get install slurm-wlm munge (scripts/deps.sh)"; return; }
  done
  mkdir -p "$SLURM_TEST_DIR"/{spool/ctld,spool/d,log}

  # munge: reuse a running one, else start it as in the recipe.
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    [[ -s /etc/munge/munge.key ]] || mungekey --create --keyfile=/etc/munge/munge.key >/dev/null 2>&1 ||
      { slurm_skip "cannot create /etc/munge/munge.key"; return; }
    chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
    install -d -o munge -g munge -m 0755 /run/munge
    runuser -u munge -- munged >"$SLURM_TEST_DIR/log/munged.out" 2>&1 ||
      { slurm_skip "munged will not start: $(cat "$SLURM_TEST_DIR/log/munged.out")"; return; }
    SLURM_TEST_STARTED_MUNGE=1
    munge -n | unmunge >/dev/null 2>&1 || { slurm_skip "munge does not round-trip a credential"; return; }
  fi

  local host node port
  host=$(hostname -s)
  node=$(slurmd -C 2>/dev/null | head -1)
  [[ $node == NodeName=* ]] || { slurm_skip "slurmd -C does not describe this node: $node"; return; }
  port=$((20000 + RANDOM % 20000))  # not 6817/6818: a site's Slurm may run here
  cat >"$SLURM_TEST_DIR/slurm.conf" <<EOF
ClusterName=mhimtest
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire=5
MpiDefault=pmix
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
ReturnToService=2
JobFileAppend=1
MinJobAge=600
KillWait=30
MailProg=/bin/true
StateSaveLocation=$SLURM_TEST_DIR/spool/ctld
SlurmdSpoolDir=$SLURM_TEST_DIR/spool/d
SlurmctldPidFile=$SLURM_TEST_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_TEST_DIR/slurmd.pid
SlurmctldLogFile=$SLURM_TEST_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_TEST_DIR/log/slurmd.log
$node State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF=$SLURM_TEST_DIR/slurm.conf
  slurmctld -f "$SLURM_CONF" >"$SLURM_TEST_DIR/log/slurmctld.out" 2>&1 ||
    { slurm_skip "slurmctld will not start: $(tail -3 "$SLURM_TEST_DIR/log/slurmctld.log" 2>/dev/null)"; return; }
  slurmd -f "$SLURM_CONF" >"$SLURM_TEST_DIR/log/slurmd.out" 2>&1 ||
    { slurm_skip "slurmd will not start: $(tail -3 "$SLURM_TEST_DIR/log/slurmd.log" 2>/dev/null)"; return; }
  local i
  for ((i = 0; i < 60; ++i)); do
    if sinfo -h -o %T 2>/dev/null | grep -qx idle; then return 0; fi
    sleep 0.5
  done
  slurm_skip "the node did not become idle in 30 s: $(sinfo 2>&1 | tail -2); $(tail -3 "$SLURM_TEST_DIR/log/slurmctld.log")"
}

slurm_down() {
  [[ -n $SLURM_TEST_DIR ]] || return 0
  local file pid
  # This cluster's jobs first (SLURM_CONF points at it), so no job process outlives the daemons.
  if [[ -n ${SLURM_CONF:-} ]] && scontrol ping >/dev/null 2>&1; then
    scancel --full --signal=KILL --user=root >/dev/null 2>&1
    for _ in $(seq 30); do [[ -z $(squeue -h -t running,completing 2>/dev/null) ]] && break; sleep 0.5; done
  fi
  for file in slurmd.pid slurmctld.pid; do
    pid=$(cat "$SLURM_TEST_DIR/$file" 2>/dev/null) || continue
    kill "$pid" 2>/dev/null
  done
  for file in slurmd.pid slurmctld.pid; do
    pid=$(cat "$SLURM_TEST_DIR/$file" 2>/dev/null) || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  if ((SLURM_TEST_STARTED_MUNGE)); then
    pid=$(cat /run/munge/munged.pid 2>/dev/null) && kill "$pid" 2>/dev/null
  fi
  return 0
}

# Prints "ID STATE EXIT" per job (or array task) once none of them is pending or running.
slurm_wait_done() {
  local id=$1 limit=$2 start=$SECONDS states
  while ((SECONDS - start < limit)); do
    states=$(scontrol show job "$id" -o 2>/dev/null |
      sed -E 's/^JobId=([0-9]+).* JobState=([A-Z_]+).* ExitCode=([0-9:]+).*/\1 \2 \3/')
    if [[ -n $states ]] && ! grep -qE ' (PENDING|RUNNING|REQUEUED|COMPLETING|CONFIGURING|SUSPENDED|REQUEUE_HOLD|REQUEUE_FED|RESIZING)' <<<"$states"; then
      echo "$states"
      return 0
    fi
    sleep 1
  done
  echo "TIMEOUT after ${limit}s: $states"
  return 1
}
