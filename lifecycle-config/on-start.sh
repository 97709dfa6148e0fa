#!/bin/bash
# smdiag on-start: the notebook lifecycle configuration (README: "Lifecycle configuration"). Runs as
# root at every start; over 5 minutes or a non-zero exit fails the start, so each step is bounded, logged
# with its duration, recorded in <state>/onstart/status.tsv (`smdiag doctor` reads it), and it exits 0.
# Steps: install the agent into a venv on EBS; link it onto PATH; move Docker's data-root onto EBS;
# start the disk guard; hook the kernels; add the docker-compose shim SDK v2 needs beside Compose v3+.
# Settings: the notebook's defaults, overridable from the environment. The agent's own (DOCKER_HOST,
# SMDIAG_CONDA_ENVS, SMDIAG_DOCKER_CONFIG...) are not repeated: it reads them, with agent/settings.py's.

SMDIAG_EBS_MOUNT="${SMDIAG_EBS_MOUNT:-/home/ec2-user/SageMaker}"
# The agent lives in the state dir: before it is installed, that and the install's own paths (venv,
# venvs/, downloads/, onstart/: agent/statedir.py) are named here; then `smdiag paths` gives the rest.
SMDIAG_STATE_DIR="${SMDIAG_STATE_DIR:-$SMDIAG_EBS_MOUNT/.smdiag}"
SMDIAG_VENV="${SMDIAG_VENV:-$SMDIAG_STATE_DIR/venv}"
# Where the agent comes from, as pip takes it: a checkout (DIR or DIR[extras]), a wheel's path, an
# https:// or s3:// URL of a wheel, or a PyPI requirement. Reinstalled only when it changed.
SMDIAG_SOURCE="${SMDIAG_SOURCE:-$SMDIAG_EBS_MOUNT/smdiag}"
SMDIAG_PIP_ARGS="${SMDIAG_PIP_ARGS:-}"
SMDIAG_PYTHON="${SMDIAG_PYTHON:-}" # Python 3.10+ for the venv (default: conda's base, then python3)
SMDIAG_DOCKER_STOP_CMD="${SMDIAG_DOCKER_STOP_CMD:-}" # empty: systemd, else `service docker`
SMDIAG_DOCKER_START_CMD="${SMDIAG_DOCKER_START_CMD:-}"
SMDIAG_SYSTEMD="${SMDIAG_SYSTEMD:-}" # the guard as a unit (1), detached (0), or what the host has
SMDIAG_NOTEBOOK_USER="${SMDIAG_NOTEBOOK_USER:-ec2-user}" # kernels write reports as this user
SMDIAG_BUDGET_S="${SMDIAG_BUDGET_S:-240}"
SMDIAG_BOOTSTRAP_WAIT_S="${SMDIAG_BOOTSTRAP_WAIT_S:-}" # empty: what the budget leaves
SMDIAG_BIN_DIR="${SMDIAG_BIN_DIR:-/usr/local/bin}" # `smdiag` is linked here

export SMDIAG_EBS_MOUNT SMDIAG_STATE_DIR SMDIAG_DOCKER_STOP_CMD SMDIAG_DOCKER_START_CMD # bootstrap's --stop/start-cmd
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH" # SageMaker's is shorter
SCRIPT_NAME=on-start PYTHON_CANDIDATES="/home/ec2-user/anaconda3/bin/python3 python3"

# >>> shared with studio-on-start.sh (a unit test keeps both equal)
set -u
set +e
umask 022

ONSTART_DIR="$SMDIAG_STATE_DIR/onstart"
LOG_FILE="$ONSTART_DIR/on-start.log"
STATUS_FILE="$ONSTART_DIR/status.tsv"
STATUS_LINES=""
SMDIAG_BIN="$SMDIAG_VENV/bin/smdiag"
START_MS=$(($(date +%s%N) / 1000000))

mkdir -p "$ONSTART_DIR" 2>/dev/null

now_ms() { echo $(($(date +%s%N) / 1000000)); }
seconds_since() { local ms=$(($(now_ms) - $1)); printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100)); }
remaining_s() { echo $((SMDIAG_BUDGET_S - ($(now_ms) - START_MS) / 1000)); }
one_line() { printf '%s' "$*" | tr '\t\r\n' '   ' | cut -c1-400; }
last_line() { [ -s "$1" ] && grep -v '^[[:space:]]*$' "$1" | tail -n 1; }

say() {
    local line
    line="$(date -u +%Y-%m-%dT%H:%M:%SZ) smdiag $SCRIPT_NAME +$(seconds_since "$START_MS")s | $*"
    echo "$line"
    echo "$line" >>"$LOG_FILE" 2>/dev/null
}

write_status() {
    local finished="${1:-}"
    {
        echo "# started $(date -u -d "@$((START_MS / 1000))" +%Y-%m-%dT%H:%M:%SZ)"
        printf '%s' "$STATUS_LINES"
        [ -n "$finished" ] && echo "# finished $(date -u +%Y-%m-%dT%H:%M:%SZ) $finished"
    } >"$STATUS_FILE.tmp" 2>/dev/null && mv -f "$STATUS_FILE.tmp" "$STATUS_FILE" 2>/dev/null
}

# record STEP STATE STARTED_MS DETAIL: log the outcome (loudly when failed) and keep it for doctor.
record() {
    local step=$1 state=$2 took detail
    took=$(seconds_since "$3")
    detail=$(one_line "$4")
    if [ "$state" = failed ]; then
        say "$step: FAILED after ${took}s: $detail"
    else
        say "$step: $state in ${took}s: $detail"
    fi
    STATUS_LINES+="$step"$'\t'"$state"$'\t'"$took"$'\t'"$detail"$'\n'
    write_status
}

# step_limit RESERVE CAP: what the budget leaves after RESERVE seconds for the steps after this one.
step_limit() {
    local reserve=$1 cap=$2 left
    left=$(($(remaining_s) - reserve))
    ((left > cap)) && left=$cap
    ((left < 5)) && left=5
    echo "$left"
}

agent_works() { [ -x "$SMDIAG_VENV/bin/python" ] && "$SMDIAG_VENV/bin/python" -m agent --version >/dev/null 2>&1; }
AGENT_OK=0 # set by step_install: a working agent is linked as $SMDIAG_VENV

pick_python() {
    local candidate
    for candidate in ${SMDIAG_PYTHON:-$PYTHON_CANDIDATES}; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

# A new fingerprint (a checkout's files, a wheel's bytes, a requirement, the interpreter): a new venv.
fingerprint() {
    local requirement=$1 python=$2 path=${1%%\[*}
    {
        echo "$requirement"
        "$python" -c 'import sys; print(sys.executable, sys.version)'
        if [ -d "$path" ]; then
            (cd "$path" && find . \( -name .git -o -name __pycache__ -o -name '*.egg-info' -o -name build \
                -o -name dist -o -name .pytest_cache \) -prune -o -type f -printf '%P %s %T@\n' | LC_ALL=C sort)
        elif [ -f "$path" ]; then
            sha256sum <"$path"
        fi
    } | sha256sum | cut -c1-16
}
# <<< shared

# A wheel behind a URL is fetched (keeping its name, which pip needs) so that its bytes can be compared.
fetch() {
    local url=$1 name target
    name=$(basename "${url%%\?*}")
    target="$SMDIAG_STATE_DIR/downloads/$name"
    mkdir -p "$SMDIAG_STATE_DIR/downloads"
    case "$url" in
        s3://*) timeout 60 aws s3 cp --only-show-errors "$url" "$target.part" ;;
        *) timeout 60 curl -fsSL --connect-timeout 10 -o "$target.part" "$url" ;;
    esac 2>"$ONSTART_DIR/fetch.err" || { echo "cannot fetch $url: $(last_line "$ONSTART_DIR/fetch.err")"; return 1; }
    mv -f "$target.part" "$target"
    echo "$target"
}

step_install() {
    local started python requirement key venvs new limit kept=""
    started=$(now_ms)
    agent_works && AGENT_OK=1 && kept=" (the agent installed before is kept)"
    requirement=$SMDIAG_SOURCE
    case "$SMDIAG_SOURCE" in
        s3://* | http://* | https://*)
            requirement=$(fetch "$SMDIAG_SOURCE") || { record install failed "$started" "$requirement$kept"; return; }
            ;;
    esac
    python=$(pick_python) || {
        record install failed "$started" "no Python 3.10 or newer with venv (tried ${SMDIAG_PYTHON:-conda base, python3}): set SMDIAG_PYTHON$kept"
        return
    }
    case "$requirement" in
        /*) [ -e "${requirement%%\[*}" ] || {
            record install failed "$started" "SMDIAG_SOURCE ${requirement%%\[*} does not exist: put a checkout or wheel there, or set SMDIAG_SOURCE$kept"
            return
        } ;;
    esac
    key=$(fingerprint "$requirement" "$python")
    venvs="$SMDIAG_STATE_DIR/venvs"
    if [ "$(readlink "$SMDIAG_VENV")" = "$venvs/$key" ] && ((AGENT_OK)); then
        record install ok "$started" "unchanged: $("$SMDIAG_BIN" --version) in $SMDIAG_VENV"
        return
    fi
    limit=$(step_limit 90 180)
    new="$venvs/$key"
    rm -rf "$new"
    mkdir -p "$venvs"
    # shellcheck disable=SC2086 # SMDIAG_PIP_ARGS is a list of arguments
    if timeout -k 5 "$limit" "$python" -m venv "$new" >"$ONSTART_DIR/install.log" 2>&1 &&
        timeout -k 5 "$limit" "$new/bin/python" -m pip install --disable-pip-version-check --no-input \
            --timeout 15 --retries 1 $SMDIAG_PIP_ARGS "$requirement" >>"$ONSTART_DIR/install.log" 2>&1 &&
        "$new/bin/python" -m agent --version >>"$ONSTART_DIR/install.log" 2>&1; then
        # Switch atomically: the link always names a complete environment.
        ln -sfn "$new" "$SMDIAG_VENV.new" && mv -Tf "$SMDIAG_VENV.new" "$SMDIAG_VENV" && AGENT_OK=1
        find "$venvs" -mindepth 1 -maxdepth 1 ! -name "$key" -exec rm -rf {} + 2>/dev/null
        record install ok "$started" "installed $("$SMDIAG_BIN" --version) from $SMDIAG_SOURCE into $SMDIAG_VENV"
    else
        rm -rf "$new"
        record install failed "$started" "installing $SMDIAG_SOURCE failed (exit or time limit ${limit}s): $(last_line "$ONSTART_DIR/install.log")$kept"
    fi
}

step_bootstrap() {
    local started wait_s d=$ONSTART_DIR
    started=$(now_ms)
    rm -f "$d"/bootstrap.{pid,rc,out}
    # Its own session, so it outlives this script; bootstrap always restarts Docker (new root or rolled back).
    setsid bash -c 'd=$1; shift; echo $$ >"$d/bootstrap.pid"; "$@" >"$d/bootstrap.out" 2>&1
        echo $? >"$d/bootstrap.rc.tmp"; mv -f "$d/bootstrap.rc.tmp" "$d/bootstrap.rc"' _ "$d" "$SMDIAG_BIN" \
        bootstrap </dev/null >/dev/null 2>&1 &
    wait_s=${SMDIAG_BOOTSTRAP_WAIT_S:-$(step_limit 60 300)}
    while [ ! -e "$d/bootstrap.rc" ] && (($(now_ms) - started < wait_s * 1000)); do sleep 0.5; done
    if [ ! -e "$d/bootstrap.rc" ]; then
        record bootstrap background "$started" "the first copy of Docker's data-root goes on in the background (pid $(cat "$d/bootstrap.pid")); Docker restarts when it ends; \`smdiag doctor\` reports it"
    elif [ "$(cat "$d/bootstrap.rc")" = 0 ]; then
        record bootstrap ok "$started" "$(head -n 1 "$d/bootstrap.out")"
    else
        record bootstrap failed "$started" "$(last_line "$d/bootstrap.out")"
    fi
}

# Hints name `smdiag`: re-link it onto PATH at every start (the root volume is reset).
step_link() {
    local started l="$SMDIAG_BIN_DIR/smdiag"
    started=$(now_ms)
    if [ -e "$l" ] && [ ! -L "$l" ]; then
        record link failed "$started" "$l is not smdiag's link: left alone"
    elif mkdir -p "$SMDIAG_BIN_DIR" && ln -sfn "$SMDIAG_BIN" "$l.new" && mv -Tf "$l.new" "$l"; then
        record link ok "$started" "$l -> $SMDIAG_BIN"
    else
        record link failed "$started" "cannot link $l"
    fi
}

# run_step STEP RESERVE CAP COMMAND...: an agent command, bounded; its last line of output is the detail.
run_step() {
    local step=$1 limit started code out="$ONSTART_DIR/$1.out"
    started=$(now_ms)
    limit=$(step_limit "$2" "$3")
    shift 3
    timeout -k 5 "$limit" "$@" >"$out" 2>&1
    code=$?
    if [ $code = 0 ]; then
        record "$step" ok "$started" "$(last_line "$out")"
    else
        [ $code = 124 ] && echo "timed out after ${limit}s" >>"$out"
        record "$step" failed "$started" "$(last_line "$out")"
    fi
}

# Kernels run as the notebook user and write reports and logs into the state dir.
hand_state_to_user() {
    id "$SMDIAG_NOTEBOOK_USER" >/dev/null 2>&1 || return 0
    mkdir -p "$SMDIAG_FAILURES_DIR" "$SMDIAG_LOGS_DIR"
    touch "$SMDIAG_LOG_FILE"
    chown "$SMDIAG_NOTEBOOK_USER" "$SMDIAG_STATE_DIR" "$SMDIAG_FAILURES_DIR" "$SMDIAG_LOGS_DIR" "$SMDIAG_LOG_FILE" \
        2>/dev/null
}

main() {
    say "starting (budget ${SMDIAG_BUDGET_S}s; agent from $SMDIAG_SOURCE; state in $SMDIAG_STATE_DIR)"
    write_status
    step_install
    if ((AGENT_OK)) && paths=$("$SMDIAG_BIN" paths --shell) && eval "$paths"; then
        step_link
        step_bootstrap
        case "$SMDIAG_SYSTEMD" in
            0) run_step guard 30 40 "$SMDIAG_BIN" diskguard start --no-systemd ;;
            1) run_step guard 30 40 "$SMDIAG_BIN" diskguard start --systemd ;;
            *) run_step guard 30 40 "$SMDIAG_BIN" diskguard start ;;
        esac
        run_step kernels 5 60 "$SMDIAG_BIN" kernels enable --agent-python "$SMDIAG_VENV/bin/python"
        run_step compose 0 30 "$SMDIAG_BIN" doctor --fix --only compose --yes
        hand_state_to_user
    else
        for step in link bootstrap guard kernels compose; do
            record "$step" skipped "$(now_ms)" "no working agent in $SMDIAG_VENV (see the install step)"
        done
    fi
    write_status "$(seconds_since "$START_MS")"
    say "done in $(seconds_since "$START_MS")s: $(printf '%s' "$STATUS_LINES" | cut -f1,2 | tr '\t' ' ' | paste -sd, -)"
}

main
exit 0
