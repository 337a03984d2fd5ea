# shellcheck shell=bash
# Background processes recorded by PID, for scripts/stack. Needs common.sh and, set by the
# caller, STACK_DIR. A pid file holds "PID STARTTIME" (field 22 of /proc/PID/stat), so a PID
# that the kernel has since reused for another process is never signalled.

pids_dir() { printf '%s/pids' "$STACK_DIR"; }
logs_dir() { printf '%s/logs' "$STACK_DIR"; }

# proc_starttime PID: the process's start time in clock ticks; fails if PID is gone or a zombie.
proc_starttime() {
  local stat rest f
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  rest=${stat##*) }            # the fields after "(comm) "; comm may contain spaces
  read -r -a f <<<"$rest"
  [[ "${f[0]}" != Z && "${f[0]}" != X ]] || return 1
  printf '%s\n' "${f[19]}"     # field 22 overall is index 19 after state (field 3)
}

# recorded_pid NAME: the PID in NAME's pid file if that very process still runs.
recorded_pid() {
  local file pid start now
  file="$(pids_dir)/$1.pid"
  [[ -f "$file" ]] || return 1
  read -r pid start <"$file" || true
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  now=$(proc_starttime "$pid") || return 1
  [[ -z "$start" || "$now" == "$start" ]] || return 1
  printf '%s\n' "$pid"
}

svc_running() { recorded_pid "$1" >/dev/null; }

# start_bg NAME CMD...: start CMD detached (own session, stdin from /dev/null, output appended
# to logs/NAME.log), working directory $START_CWD (default STACK_DIR/data); record its PID.
start_bg() {
  local name=$1 log pid start cwd="${START_CWD:-$STACK_DIR/data}"; shift
  log="$(logs_dir)/$name.log"
  mkdir -p "$(pids_dir)" "$(logs_dir)" "$cwd"
  printf '=== %s: starting %s\n' "$(date -Is)" "$*" >>"$log"
  # The subshell is not a process-group leader, so setsid does not fork: $! is the service.
  ( cd "$cwd" && NO_COLOR=1 exec setsid "$@" </dev/null >>"$log" 2>&1 ) &
  pid=$!
  start=$(proc_starttime "$pid" || true)
  printf '%s %s\n' "$pid" "$start" >"$(pids_dir)/$name.pid"
  STARTED+=("$name")
}

# stop_recorded NAME [SIGNAL]: signal NAME's recorded process, wait up to 20 s for it to
# exit (then SIGKILL), and remove the pid file.
stop_recorded() {
  local name=$1 sig=${2:-TERM} pid t
  if pid=$(recorded_pid "$name"); then
    kill "-$sig" "$pid" 2>/dev/null || true
    t=$(now_ms)
    if ! poll_until 20 bash -c "! kill -0 $pid 2>/dev/null || grep -q '^State:.*Z' /proc/$pid/status"; then
      warn "$name (pid $pid) ignored SIG$sig for 20 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      poll_until 5 bash -c "! kill -0 $pid 2>/dev/null || grep -q '^State:.*Z' /proc/$pid/status" \
        || warn "$name (pid $pid) still present after SIGKILL"
    fi
    printf '  %-20s stopped (pid %s, %s)\n' "$name" "$pid" "$(elapsed "$t")"
  fi
  rm -f "$(pids_dir)/$name.pid"
}

# log_tail NAME: the end of NAME's log, indented, for error messages.
log_tail() {
  local log; log="$(logs_dir)/$1.log"
  # Only this start's output: what follows the last "=== ...: starting" marker.
  [[ -f "$log" ]] && awk '/^=== .*: starting /{n=0} {l[n++]=$0} END{for(i=(n>15?n-15:0);i<n;i++) print "    | " l[i]}' "$log" >&2
  return 0
}

# wait_ready NAME TIMEOUT CHECK...: poll CHECK until it succeeds; fail early if NAME died.
wait_ready() {
  local name=$1 limit=$2 start; shift 2
  start=$(now_ms)
  until "$@" >/dev/null 2>&1; do
    if ! svc_running "$name"; then
      log_tail "$name"
      die "$name exited during start-up; see $(logs_dir)/$name.log"
    fi
    if (( $(now_ms) - start >= limit * 1000 )); then
      log_tail "$name"
      die "$name did not answer within ${limit}s; see $(logs_dir)/$name.log"
    fi
    sleep 0.1
  done
}

# http_code URL [CURL ARGS...]: the HTTP status (000 when nothing answered), trusting the stack CA.
http_code() {
  local url=$1; shift
  curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$STACK_DIR/ca/ca.pem" "$@" "$url" || true
}
http_answers() { [[ "$(http_code "$@")" != 000 ]]; }
http_is() { local want=$1; shift; [[ "$(http_code "$@")" == "$want" ]]; }
