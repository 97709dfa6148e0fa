#!/bin/bash
# smdiag on-start for SageMaker Studio spaces (JupyterLab, Code Editor): a Studio lifecycle configuration
# (README: "SageMaker Studio"). Studio runs it as the space's user at every app start; over its time limit
# or a non-zero exit the app fails to start, so each step is bounded, logged with its duration, recorded in
# <state>/onstart/status.tsv (`smdiag doctor` reads it), and it exits 0. As on-start.sh for notebook
# instances, less what Studio does not need: there is no data-root to move (the engine is the host's).
# Steps: install the agent into a venv in the home (the space's EBS volume, kept between starts); link
# `smdiag` into ~/.local/bin; hook the space's Python environments' kernels; start the disk guard.
# Every path below is a variable with Studio's default, overridable from the environment.

SMDIAG_HOME="${SMDIAG_HOME:-/home/sagemaker-user}"
SMDIAG_STATE_DIR="${SMDIAG_STATE_DIR:-$SMDIAG_HOME/.smdiag}"
SMDIAG_VENV="${SMDIAG_VENV:-$SMDIAG_STATE_DIR/venv}"
# Where the agent comes from, as pip takes it: a checkout (DIR or DIR[extras]), a wheel's path, or a PyPI
# requirement. Reinstalled only when it changed.
SMDIAG_SOURCE="${SMDIAG_SOURCE:-$SMDIAG_HOME/smdiag}"
SMDIAG_PIP_ARGS="${SMDIAG_PIP_ARGS:-}"
SMDIAG_PYTHON="${SMDIAG_PYTHON:-}" # Python 3.10+ for the venv (default: the image's conda, then python3)
SMDIAG_CONDA_ENVS="${SMDIAG_CONDA_ENVS:-/opt/conda /opt/conda/envs/*}"
DOCKER_HOST="${DOCKER_HOST:-unix:///docker/proxy.sock}"
SMDIAG_BUDGET_S="${SMDIAG_BUDGET_S:-240}"
SMDIAG_BIN_DIR="${SMDIAG_BIN_DIR:-$SMDIAG_HOME/.local/bin}" # `smdiag` is linked here

export SMDIAG_STATE_DIR SMDIAG_CONDA_ENVS DOCKER_HOST
export PATH="/usr/local/bin:/usr/bin:/bin:$PATH"
SCRIPT_NAME=studio-on-start PYTHON_CANDIDATES="/opt/conda/bin/python3 python3"

# >>> shared with on-start.sh (a unit test keeps both equal)
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

step_install() {
    local started python key venvs new limit kept=""
    started=$(now_ms)
    agent_works && AGENT_OK=1 && kept=" (the agent installed before is kept)"
    python=$(pick_python) || {
        record install failed "$started" "no Python 3.10 or newer with venv (tried ${SMDIAG_PYTHON:-/opt/conda/bin/python3, python3}): set SMDIAG_PYTHON$kept"
        return
    }
    case "$SMDIAG_SOURCE" in
        /*) [ -e "${SMDIAG_SOURCE%%\[*}" ] || {
            record install failed "$started" "SMDIAG_SOURCE ${SMDIAG_SOURCE%%\[*} does not exist: put a checkout or wheel there, or set SMDIAG_SOURCE$kept"
            return
        } ;;
    esac
    key=$(fingerprint "$SMDIAG_SOURCE" "$python")
    venvs="$SMDIAG_STATE_DIR/venvs"
    if [ "$(readlink "$SMDIAG_VENV")" = "$venvs/$key" ] && ((AGENT_OK)); then
        record install ok "$started" "unchanged: $("$SMDIAG_BIN" --version) in $SMDIAG_VENV"
        return
    fi
    limit=$(step_limit 60 180)
    new="$venvs/$key"
    rm -rf "$new"
    mkdir -p "$venvs"
    # shellcheck disable=SC2086 # SMDIAG_PIP_ARGS is a list of arguments
    if timeout -k 5 "$limit" "$python" -m venv "$new" >"$ONSTART_DIR/install.log" 2>&1 &&
        timeout -k 5 "$limit" "$new/bin/python" -m pip install --disable-pip-version-check --no-input \
            --timeout 15 --retries 1 $SMDIAG_PIP_ARGS "$SMDIAG_SOURCE" >>"$ONSTART_DIR/install.log" 2>&1 &&
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

# The user's own bin directory (no root in a space): hints name `smdiag`.
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

main() {
    say "starting (budget ${SMDIAG_BUDGET_S}s; agent from $SMDIAG_SOURCE; state in $SMDIAG_STATE_DIR)"
    write_status
    step_install
    if ((AGENT_OK)); then
        step_link
        run_step kernels 30 60 "$SMDIAG_BIN" kernels enable --agent-python "$SMDIAG_VENV/bin/python"
        run_step guard 0 40 "$SMDIAG_BIN" diskguard start --no-systemd
    else
        for step in link kernels guard; do
            record "$step" skipped "$(now_ms)" "no working agent in $SMDIAG_VENV (see the install step)"
        done
    fi
    write_status "$(seconds_since "$START_MS")"
    say "done in $(seconds_since "$START_MS")s: $(printf '%s' "$STATUS_LINES" | cut -f1,2 | tr '\t' ' ' | paste -sd, -)"
}

main
exit 0
