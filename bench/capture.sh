#!/usr/bin/env bash
# Regenerate bench/data/bench.log: a large, real audit log written by auditd from
# this machine's kernel, for `npm run bench`.
#
# Usage:   sudo bench/capture.sh
#
# What it does, in order:
#   1. Installs auditd, crun and busybox-static with apt-get if they are missing.
#   2. Takes /run/contid-audit-test.lock (flock). Kernel audit state is global and
#      other kernel tests take the same lock, so they never overlap with a capture.
#   3. Writes a private auditd config under bench/data/auditconf: log_file goes to
#      bench/data/auditlog/audit.log, plugin_dir is an empty private directory (so
#      the laurel plugin that Debian activates in /etc/audit/plugins.d is NOT
#      started), log_format = ENRICHED (the Debian default: each record carries
#      an interpreted part after \x1d, which is what production logs look like;
#      RAW would make every tool a little faster), max_log_file = 1024 MB so a
#      default capture never rotates. If it does rotate (large sizes), the files are
#      concatenated oldest first.
#   4. Records the audit state (enabled, backlog_limit, rules), starts
#      `auditd -c bench/data/auditconf`, sets `auditctl -b 8192` and adds narrow
#      rules that match only the workload (auid 4242, key contid-bench*):
#      clone/fork/vfork/clone3/execve/exit_group (b64 and b32), openat under a
#      private directory (PATH, CWD records), connect (SOCKADDR records).
#   5. Runs the workload in its own session, after writing 4242 to
#      /proc/self/loginuid so that only its process tree matches the rules:
#      BENCH_LOOPS parallel bash loops of BENCH_ITERATIONS iterations each (an exec of
#      /bin/true, a `sh -c` pipeline, file writes and reads in the private
#      directory, an occasional refused TCP connect), and, next to them,
#      BENCH_CONTAINERS crun containers with a busybox rootfs whose shell script
#      forks BENCH_CONTAINER_FORKS times, with background jobs.
#   6. Waits for the kernel backlog to drain, then restores the audit state (also
#      from an EXIT trap, so on errors and Ctrl-C too): deletes exactly the rules it
#      added, stops the auditd it started (SIGTERM to its pid, then waits), sets
#      enabled and backlog_limit back, and checks that `auditctl -s` shows pid 0.
#      It never touches the failure mode (-f) and never locks the config (-e 2).
#   7. Writes bench/data/bench.log (mode 0644: the content is synthetic) and
#      bench/data/bench.summary (lines, events, bytes, kernel `lost` counter).
#
# Running it again replaces the log. Leftovers of a run killed with SIGKILL (its
# auditd, its workload session, rules with key contid-bench*, containers named
# contid-bench-*) are cleaned first, and the audit state found by that run, kept in
# bench/data/audit-state.saved until it is restored, is the one put back.
#
# Environment (the defaults gave 265k events, 899k lines, 202 MiB in 1 min 46 s on 2 vCPUs):
#   BENCH_ITERATIONS        iterations per host loop                (default 2800)
#   BENCH_LOOPS             parallel host loops                     (default 4)
#   BENCH_CONTAINERS        crun containers, run one after another  (default 40)
#   BENCH_CONTAINER_FORKS   loop iterations inside each container   (default 150)
#   BENCH_LOCK_WAIT         seconds to wait for the lock            (default 1800)
set -euo pipefail

readonly SELF=$(readlink -f "${BASH_SOURCE[0]}")
readonly BENCH_DIR=$(dirname "$SELF")
readonly DATA="$BENCH_DIR/data"
readonly CONF_DIR="$DATA/auditconf"
readonly LOG_DIR="$DATA/auditlog"
readonly FILES_DIR="$DATA/files"
readonly ROOTFS="$DATA/rootfs"
readonly BUNDLES="$DATA/bundles"
readonly OUT_LOG="$DATA/bench.log"
readonly SUMMARY="$DATA/bench.summary"
# The audit state found before a capture, kept until it is restored, so that a
# run after a killed one restores the original state, not the killed run's.
readonly SAVED_STATE="$DATA/audit-state.saved"
readonly LOCK=/run/contid-audit-test.lock
readonly AUID=4242
readonly KEY=contid-bench
readonly CONTAINER_PREFIX=contid-bench-

export BENCH_ITERATIONS=${BENCH_ITERATIONS:-2800}
export BENCH_LOOPS=${BENCH_LOOPS:-4}
export BENCH_CONTAINERS=${BENCH_CONTAINERS:-40}
export BENCH_CONTAINER_FORKS=${BENCH_CONTAINER_FORKS:-150}
readonly LOCK_WAIT=${BENCH_LOCK_WAIT:-1800}

log() { printf 'capture: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# --- workload (runs as `capture.sh __workload`, in its own session) ----------

host_loop() {
  local loop=$1 i f
  for ((i = 0; i < BENCH_ITERATIONS; i++)); do
    f="$FILES_DIR/loop$loop-$((i % 8))"
    /bin/true
    sh -c 'echo "x y" | cat >/dev/null'
    echo "$loop $i" >"$f"
    cat "$f" >/dev/null
    if ((i % 100 == 0)); then
      # A refused connect still gives a SYSCALL + SOCKADDR record.
      { : </dev/tcp/127.0.0.1/9; } 2>/dev/null || true
      (cd "$FILES_DIR" && /bin/ls -a >/dev/null)
    fi
  done
}

container_loop() {
  local n id
  for ((n = 0; n < BENCH_CONTAINERS; n++)); do
    id="$CONTAINER_PREFIX$n"
    # The hybrid cgroup layout makes crun refuse to run (KERNEL.md §7); hiding the
    # cgroup2 mount in a private mount namespace is the workaround.
    unshare -m --propagation private sh -c \
      'umount /sys/fs/cgroup/unified 2>/dev/null || true; exec crun --cgroup-manager=disabled run --bundle "$1" "$2"' \
      sh "$BUNDLES/$id" "$id" </dev/null >/dev/null ||
      log "container $id exited with status $?"
  done
}

workload() {
  # Every process below inherits auid 4242 and a fresh session id, so the
  # `-F auid=4242` rules see this tree and nothing else on the machine.
  echo "$AUID" >/proc/self/loginuid
  local pids=() l
  for ((l = 0; l < BENCH_LOOPS; l++)); do
    host_loop "$l" &
    pids+=($!)
  done
  container_loop &
  pids+=($!)
  local status=0
  for l in "${pids[@]}"; do wait "$l" || status=1; done
  return "$status"
}

if [[ ${1:-} == __workload ]]; then
  workload
  exit
fi

# --- preparation --------------------------------------------------------------

[[ $EUID -eq 0 ]] || die "must run as root (sudo bench/capture.sh)"
[[ $BENCH_DIR != *[[:space:]]* ]] || die "the path '$BENCH_DIR' contains whitespace"

install_missing() {
  local missing=()
  command -v auditd >/dev/null || missing+=(auditd)
  command -v crun >/dev/null || missing+=(crun)
  # grep without -q reads all input: no SIGPIPE for busybox under pipefail.
  [[ -x /bin/busybox ]] && /bin/busybox --list | grep -x ash >/dev/null || missing+=(busybox-static)
  command -v flock >/dev/null || missing+=(util-linux)
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  fi
}
install_missing

if [[ ${CONTID_BENCH_LOCKED:-} != 1 ]]; then
  log "taking $LOCK (waits up to ${LOCK_WAIT}s while other kernel tests run)"
  # -o: the lock stays with flock itself, not with auditd or stray workload
  # processes that would otherwise inherit the descriptor.
  exec env CONTID_BENCH_LOCKED=1 flock -o -w "$LOCK_WAIT" "$LOCK" "$BASH" "$SELF" "$@"
fi

# `auditctl -s` prints "name value" lines.
audit_status() { auditctl -s | awk -v k="$1" '$1 == k { print $2 }'; }

write_config() {
  mkdir -p "$CONF_DIR/plugins.d" "$LOG_DIR"
  # plugins.d must stay empty: any *.conf there is a plugin auditd would start.
  find "$CONF_DIR/plugins.d" -mindepth 1 -delete
  grep -v -e '^#' -e '^$' /etc/audit/auditd.conf |
    grep -v -E '^(log_file|plugin_dir|log_format|name_format|max_log_file|max_log_file_action|num_logs|log_group) ' \
      >"$CONF_DIR/auditd.conf.tmp"
  cat >>"$CONF_DIR/auditd.conf.tmp" <<EOF
log_file = $LOG_DIR/audit.log
plugin_dir = $CONF_DIR/plugins.d
log_format = ENRICHED
name_format = NONE
max_log_file = 1024
max_log_file_action = ROTATE
num_logs = 99
log_group = root
EOF
  chmod 0640 "$CONF_DIR/auditd.conf.tmp"
  mv "$CONF_DIR/auditd.conf.tmp" "$CONF_DIR/auditd.conf"
}

make_rootfs() {
  mkdir -p "$ROOTFS"/{bin,proc,sys,dev,etc,tmp}
  cp -f /bin/busybox "$ROOTFS/bin/busybox"
  local a
  for a in sh echo cat sleep ls true seq; do ln -sfn busybox "$ROOTFS/bin/$a"; done
}

# Busybox sh script run by each container: a fork/exec loop with pipelines and
# background jobs, reaped every 10 iterations.
container_script() {
  cat <<EOF
i=0
while [ \$i -lt $BENCH_CONTAINER_FORKS ]; do
  echo "c \$i" | cat >/dev/null
  /bin/true &
  (sleep 0; /bin/echo sub \$i >/dev/null) &
  i=\$((i + 1))
  if [ \$((i % 10)) -eq 0 ]; then wait; fi
done
wait
EOF
}

make_bundles() {
  rm -rf "$BUNDLES"
  mkdir -p "$BUNDLES/template"
  (cd "$BUNDLES/template" && crun spec)
  local n id
  for ((n = 0; n < BENCH_CONTAINERS; n++)); do
    id="$CONTAINER_PREFIX$n"
    mkdir -p "$BUNDLES/$id"
    SPEC="$BUNDLES/template/config.json" OUT="$BUNDLES/$id/config.json" ROOT="$ROOTFS" HOST="$id" \
      SCRIPT="$(container_script)" node -e '
        const fs = require("node:fs");
        const spec = JSON.parse(fs.readFileSync(process.env.SPEC, "utf8"));
        spec.process.terminal = false;
        spec.process.args = ["/bin/sh", "-c", process.env.SCRIPT];
        spec.root = { path: process.env.ROOT, readonly: true };
        spec.hostname = process.env.HOST;
        fs.writeFileSync(process.env.OUT, JSON.stringify(spec, null, 2));'
  done
}

remove_stale_containers() {
  local id
  for id in $(crun list -q 2>/dev/null | grep "^$CONTAINER_PREFIX" || true); do
    crun delete -f "$id" >/dev/null 2>&1 || true
  done
}

# A pid registered with the kernel whose command line names our config dir is an
# auditd left by a killed capture; anything else belongs to someone else.
is_our_auditd() {
  local pid=$1
  [[ $pid != 0 && -r /proc/$pid/cmdline ]] && [[ $(tr '\0' ' ' <"/proc/$pid/cmdline") == *"$CONF_DIR"* ]]
}

stop_pid() {
  local pid=$1 waited=0
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do
    if ((waited >= 300)); then
      log "auditd $pid ignored SIGTERM for 30s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      return 0
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
}

# --- capture with state restore ---------------------------------------------

RULES=(
  "-a always,exit -F arch=b64 -S clone,fork,vfork,clone3,execve,exit_group -F auid=$AUID -k $KEY"
  "-a always,exit -F arch=b32 -S clone,fork,vfork,clone3,execve,exit_group -F auid=$AUID -k $KEY"
  "-a always,exit -F arch=b64 -S openat -F dir=$FILES_DIR -F auid=$AUID -k $KEY-file"
  "-a always,exit -F arch=b64 -S connect -F auid=$AUID -k $KEY-net"
)
ADDED_RULES=()
AUDITD_PID=
WORKLOAD_PID=
PREV_ENABLED=
PREV_BACKLOG=
RESTORED=0

restore() {
  ((RESTORED)) && return 0
  RESTORED=1
  set +e
  if [[ -n $WORKLOAD_PID ]] && kill -0 "$WORKLOAD_PID" 2>/dev/null; then
    log "stopping workload session $WORKLOAD_PID"
    kill -TERM -- "-$WORKLOAD_PID" 2>/dev/null
    sleep 1
    kill -KILL -- "-$WORKLOAD_PID" 2>/dev/null
  fi
  remove_stale_containers
  local rule
  for rule in "${ADDED_RULES[@]}"; do
    # shellcheck disable=SC2086 # a rule is a list of words without spaces
    auditctl ${rule/#-a /-d } >/dev/null || log "could not delete rule: $rule"
  done
  ADDED_RULES=()
  if [[ -n $AUDITD_PID ]]; then
    stop_pid "$AUDITD_PID"
    log "stopped auditd $AUDITD_PID"
    AUDITD_PID=
  fi
  [[ -n $PREV_BACKLOG ]] && auditctl -b "$PREV_BACKLOG" >/dev/null
  [[ -n $PREV_ENABLED ]] && auditctl -e "$PREV_ENABLED" >/dev/null
  [[ -n $PREV_ENABLED && -n $PREV_BACKLOG ]] && rm -f "$SAVED_STATE"
  local pid
  pid=$(audit_status pid)
  if [[ $pid != 0 ]]; then
    log "warning: auditctl -s still shows pid $pid"
  fi
  log "audit state: $(auditctl -s | awk '$1 ~ /^(enabled|pid|backlog_limit|lost)$/ { printf "%s %s  ", $1, $2 }')rules: $(auditctl -l | awk 'NR == 1')"
}
trap restore EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Leftovers of a capture that was killed before its trap could run.
stale=$(audit_status pid)
if [[ $stale != 0 ]]; then
  is_our_auditd "$stale" || die "another audit daemon (pid $stale) is registered; stop it first"
  log "stopping auditd $stale left by an earlier capture"
  stop_pid "$stale"
fi
# A workload session of a killed capture would keep adding auid 4242 events.
for pid in $(pgrep -x -f -- "$BASH $SELF __workload" || true); do
  log "stopping workload session $pid left by an earlier capture"
  kill -KILL -- "-$pid" 2>/dev/null || true
done
remove_stale_containers
while read -r line; do
  [[ $line == *"-k $KEY"* || $line == *"key=$KEY"* ]] || continue
  log "deleting leftover rule: $line"
  # shellcheck disable=SC2086
  auditctl ${line/#-a /-d } >/dev/null
done < <(auditctl -l)

if [[ -f $SAVED_STATE ]]; then
  # shellcheck source=/dev/null # two assignments written below
  . "$SAVED_STATE"
  log "restoring the state saved by a capture that did not finish"
else
  PREV_ENABLED=$(audit_status enabled)
  PREV_BACKLOG=$(audit_status backlog_limit)
  [[ $PREV_ENABLED != 2 ]] || die "audit configuration is locked (enabled 2)"
  mkdir -p "$DATA"
  printf 'PREV_ENABLED=%d\nPREV_BACKLOG=%d\n' "$PREV_ENABLED" "$PREV_BACKLOG" >"$SAVED_STATE.tmp"
  mv "$SAVED_STATE.tmp" "$SAVED_STATE"
fi
LOST_BEFORE=$(audit_status lost)
log "saved state: enabled $PREV_ENABLED, backlog_limit $PREV_BACKLOG, rules: $(auditctl -l | awk 'NR == 1')"

rm -rf "$LOG_DIR" "$FILES_DIR"
mkdir -p "$LOG_DIR" "$FILES_DIR"
write_config
make_rootfs
make_bundles

auditd -c "$CONF_DIR"
for ((i = 0; i < 100; i++)); do
  AUDITD_PID=$(audit_status pid)
  [[ $AUDITD_PID == 0 ]] || break
  AUDITD_PID=
  sleep 0.1
done
[[ -n $AUDITD_PID ]] || die "auditd -c $CONF_DIR did not register with the kernel"
is_our_auditd "$AUDITD_PID" || die "the registered audit pid $AUDITD_PID is not the auditd just started"
log "auditd $AUDITD_PID started with $CONF_DIR"

auditctl -b 8192 >/dev/null
for rule in "${RULES[@]}"; do
  # shellcheck disable=SC2086
  if auditctl $rule >/dev/null; then
    ADDED_RULES+=("$rule")
  else
    log "skipping rule the kernel refused: $rule"
  fi
done
((${#ADDED_RULES[@]})) || die "no rule could be added"

log "workload: $BENCH_LOOPS loops x $BENCH_ITERATIONS iterations, $BENCH_CONTAINERS containers x $BENCH_CONTAINER_FORKS forks"
started=$SECONDS
setsid "$BASH" "$SELF" __workload &
WORKLOAD_PID=$!
wait "$WORKLOAD_PID" || log "workload exited with status $? (continuing)"
WORKLOAD_PID=
log "workload took $((SECONDS - started))s"

# Let auditd read everything the kernel still holds before the daemon stops.
for ((i = 0, quiet = 0; i < 600 && quiet < 5; i++)); do
  if [[ $(audit_status backlog) == 0 ]]; then quiet=$((quiet + 1)); else quiet=0; fi
  sleep 0.1
done
LOST_AFTER=$(audit_status lost)

restore

# auditd names rotated files audit.log.1 (newest) .. audit.log.N (oldest).
parts=()
for f in $(find "$LOG_DIR" -maxdepth 1 -name 'audit.log.*' -printf '%f\n' | sort -t. -k3,3nr); do
  parts+=("$LOG_DIR/$f")
done
parts+=("$LOG_DIR/audit.log")
cat "${parts[@]}" >"$OUT_LOG.tmp"
chmod 0644 "$OUT_LOG.tmp"
mv "$OUT_LOG.tmp" "$OUT_LOG"

lines=$(wc -l <"$OUT_LOG")
events=$(grep -o 'msg=audit([0-9.]*:[0-9]*)' "$OUT_LOG" | sort -u | wc -l)
bytes=$(stat -c %s "$OUT_LOG")
{
  echo "file $OUT_LOG"
  echo "files ${#parts[@]}"
  echo "lines $lines"
  echo "events $events"
  echo "bytes $bytes"
  echo "lost $((LOST_AFTER - LOST_BEFORE))"
  echo "kernel $(uname -r)"
  echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "settings loops=$BENCH_LOOPS iterations=$BENCH_ITERATIONS containers=$BENCH_CONTAINERS container_forks=$BENCH_CONTAINER_FORKS"
} >"$SUMMARY"
cat "$SUMMARY"
((LOST_AFTER == LOST_BEFORE)) || log "warning: the kernel lost $((LOST_AFTER - LOST_BEFORE)) records during the capture"
