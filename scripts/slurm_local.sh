#!/usr/bin/env bash
# Starts a real single-node Slurm on this machine for etch's sweep test: munge, slurmctld and
# slurmd (Debian's slurm-wlm and munge; run as root), with a config and state under FOLDER.
# Prints the config's path: export SLURM_CONF=<it> before sbatch/squeue. `stop` ends the daemons.
# Usage: scripts/slurm_local.sh start FOLDER | scripts/slurm_local.sh stop FOLDER
set -euo pipefail
cmd="$1"
dir="$(mkdir -p "$2" && cd "$2" && pwd)"
conf="$dir/slurm.conf"
if [ "$cmd" = stop ]; then
    # the daemons were started with this folder's config and key on their command lines
    SLURM_CONF="$conf" scontrol shutdown 2>/dev/null || true
    pkill -f -- "$conf" 2>/dev/null || true
    pkill -f -- "$dir/munge/munge.key" 2>/dev/null || true
    for _ in $(seq 1 50); do
        pgrep -f -- "$conf|$dir/munge/munge.key" >/dev/null || exit 0
        sleep 0.2
    done
    exit 0
fi
host="$(hostname -s)"
cpus="$(nproc)"
mem="$(awk '/MemTotal/ {print int($2 / 1024 / 2)}' /proc/meminfo)"
mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
cat >"$conf" <<CONF
ClusterName=etch
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=etch Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
# munge: its own key and socket, so a system munged (if any) is left alone
if [ ! -f "$dir/munge/munge.key" ]; then
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1 count=1024 status=none
    chmod 600 "$dir/munge/munge.key"
fi
munged --force --key-file="$dir/munge/munge.key" --pid-file="$dir/munge/munged.pid" \
    --socket="$dir/munge/munge.socket" --log-file="$dir/munged.log" --seed-file="$dir/munge/seed"
export SLURM_CONF="$conf"
slurmctld -f "$conf"
slurmd -f "$conf"
# wait until the node is idle
for _ in $(seq 1 60); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qx idle; then
        echo "$conf"
        exit 0
    fi
    sleep 1
done
echo "slurm_local: the node did not come up; see $dir/*.log" >&2
sinfo >&2 || true
tail -20 "$dir"/slurmctld.log "$dir"/slurmd.log >&2 || true
exit 1
