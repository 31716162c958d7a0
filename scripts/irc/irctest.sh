#!/usr/bin/env bash
# irctest, the IRC servers' conformance suite, against chatd's IRC front (issue 10's module list).
#
#   scripts/irc/irctest.sh [--server chatd|inspircd] [--keep] [-- PYTEST-ARGS...]
#
# Copies the pinned irctest snapshot (${IRCTEST_DIR:-REPO/../shared/irctest}: an unpacked tree or a folder
# holding irctest-*.tar.gz; /work/shared/irctest as a fallback) into a temp folder, patches its free-port
# search to bind 127.0.0.1 only, makes a venv with irctest's four dependencies from PyPI, and runs the
# selected modules with scripts/irc/chatd_controller.py. Every test chatd skips or expects to fail is in
# that controller's EXPECTED list with its reason; the plugin scripts/irc/irctest_harness.py fails
# the run on any other skip, any failure, any listed xfail that passes.
#
# --server inspircd runs the same selection against Debian's inspircd (apt-get install -y inspircd) with
# scripts/irc/inspircd_controller.py: only to prove this harness against a real server.
#
# Environment: CHATD_BIN (default .build/debug/chatd, built if missing), IRCTEST_DIR, IRCTEST_VENV (reuse
# a venv that already has the dependencies), IRCTEST_TIMEOUT (whole run, default 1200 s),
# IRCTEST_TEST_TIMEOUT (one test, default 60 s), CHATD_LOG_LEVEL.
# Bounded: pip, the build and pytest each run under a timeout; server processes the controllers start
# are recorded by PID and any left at exit are stopped (only those, checked by their environment).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
helpers="$repo/scripts/irc"

server=${IRCTEST_SERVER:-chatd}
keep=0
pytest_extra=()
while (($#)); do
    case "$1" in
        --server) server=${2:?--server needs chatd or inspircd}; shift 2 ;;
        --server=*) server=${1#--server=}; shift ;;
        --keep) keep=1; shift ;;
        --) shift; pytest_extra=("$@"); break ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "irctest.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

modules=(connection_registration cap pingpong join part names messages quit topic who whois list kick
         invite lusers isupport utf8 echo_message message_tags time multi_prefix away_notify)
markers='not services and not implementation-specific and not deprecated and not strict'

case "$server" in
    chatd)
        controller=chatd_controller
        if [ -z "${CHATD_BIN:-}" ]; then
            export CHATD_BIN="$repo/.build/debug/chatd"
            echo "== swift build --product chatd"
            (cd "$repo" && timeout 1200 swift build --product chatd 2>&1 | tail -1)
        fi
        [ -x "$CHATD_BIN" ] || { echo "== FAIL: no chatd binary at $CHATD_BIN"; exit 1; }
        # pytest runs from the irctest copy, so a path relative to here must not stay relative.
        CHATD_BIN=$(realpath "$CHATD_BIN")
        # The controller passes these; without them every test would fail on the same usage error.
        help=$("$CHATD_BIN" --help 2>&1 || true)
        for flag in --irc-listen --irc-server-name --password-file --oper-file; do
            if ! grep -q -- "$flag" <<<"$help"; then
                echo "== FAIL: $CHATD_BIN has no $flag option (the IRC front is not there yet)"
                exit 1
            fi
        done
        echo "== server: chatd ($CHATD_BIN)"
        ;;
    inspircd)
        controller=inspircd_controller
        command -v inspircd >/dev/null || { echo "== FAIL: inspircd not installed (apt-get install -y inspircd)"; exit 1; }
        echo "== server: $(inspircd --version 2>&1 | head -1) (harness proof only)"
        ;;
    *) echo "irctest.sh: --server must be chatd or inspircd, not $server" >&2; exit 2 ;;
esac

if [ -n "${IRCTEST_DIR:-}" ]; then
    snapshot=$IRCTEST_DIR
    [ -e "$snapshot" ] || { echo "== FAIL: IRCTEST_DIR=$snapshot does not exist"; exit 1; }
else
    snapshot=$repo/../shared/irctest
    [ -e "$snapshot" ] || snapshot=/work/shared/irctest
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/chatd-irctest.XXXXXX")
pid_file="$work/server-pids"
: >"$pid_file"

cleanup() {
    local status=$?
    # Servers a killed pytest could not stop: only PIDs our controllers recorded, and only while that
    # process still has our TMPDIR in its environment (so a reused PID is never touched).
    while read -r pid; do
        [ -n "$pid" ] || continue
        if [ -r "/proc/$pid/environ" ] && tr '\0' '\n' <"/proc/$pid/environ" | grep -qxF "TMPDIR=$work/tmp"; then
            echo "== stopping leftover server PID $pid"
            kill -TERM "$pid" 2>/dev/null || true
            sleep 1
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done <"$pid_file"
    if ((keep)); then echo "== kept $work"; else rm -rf "$work"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tree="$work/irctest"
mkdir -p "$tree" "$work/tmp"
if [ -f "$snapshot" ]; then
    tar -xzf "$snapshot" -C "$tree"
elif [ -f "$snapshot/conftest.py" ] && [ -d "$snapshot/irctest" ]; then
    cp -a "$snapshot/." "$tree/"
else
    shopt -s nullglob
    tarballs=("$snapshot"/irctest-*.tar.gz)
    shopt -u nullglob
    if ((${#tarballs[@]} != 1)); then
        echo "== FAIL: no irctest snapshot: need \$IRCTEST_DIR (or $repo/../shared/irctest, /work/shared/irctest)"
        echo "   to be an irctest tree or a folder with exactly one irctest-*.tar.gz; found ${#tarballs[@]} in $snapshot"
        exit 1
    fi
    tar -xzf "${tarballs[0]}" -C "$tree"
fi
[ -f "$tree/conftest.py" ] || { echo "== FAIL: $snapshot did not unpack to an irctest tree"; exit 1; }
chmod -R u+w "$tree"  # the shared snapshot is read-only; our copy gets patched and pytest writes in it
echo "== irctest snapshot: $snapshot"

# irctest finds free ports by binding "" (every interface); a test run must only touch loopback.
junk="$tree/irctest/irc_utils/junkdrawer.py"
sed -i 's/s\.bind(("", 0))/s.bind(("127.0.0.1", 0))/' "$junk"
grep -qF 's.bind(("127.0.0.1", 0))' "$junk" || { echo "== FAIL: could not patch the port search in $junk"; exit 1; }

if [ -n "${IRCTEST_VENV:-}" ] && [ -x "$IRCTEST_VENV/bin/python" ]; then
    venv=$IRCTEST_VENV
    echo "== venv: reusing $venv"
else
    venv=${IRCTEST_VENV:-$work/venv}
    echo "== venv: $venv; pip install pytest!=9.0.0 filelock ecdsa websockets"
    timeout 120 python3 -m venv "$venv"
    timeout 300 "$venv/bin/pip" install --quiet --disable-pip-version-check "pytest!=9.0.0" filelock ecdsa websockets
fi
"$venv/bin/python" -c 'import pytest, filelock, ecdsa, websockets; print("== pytest", pytest.__version__)'

# irctest keeps its port file and mkdtemp folders under TMPDIR: ours, removed with $work.
export TMPDIR="$work/tmp"
export PYTHONPATH="$helpers${PYTHONPATH:+:$PYTHONPATH}"
export IRCTEST_SERVER_PID_FILE="$pid_file"
export IRCTEST_TEST_TIMEOUT=${IRCTEST_TEST_TIMEOUT:-60}
paths=()
for module in "${modules[@]}"; do paths+=("irctest/server_tests/$module.py"); done

echo "== pytest --controller $controller -m '$markers' (${#modules[@]} modules)"
log="$work/pytest.log"
set +e
# SIGINT first: pytest then tears the running test down (the controller stops its server) and still
# prints its summary; SIGKILL 30 s later if that hangs too.
(cd "$tree" && timeout -s INT -k 30 "${IRCTEST_TIMEOUT:-1200}" "$venv/bin/python" -m pytest \
    -p irctest_harness -p no:cacheprovider --controller "$controller" -m "$markers" \
    -v -rfEsxX --tb=short --durations=5 "${pytest_extra[@]}" "${paths[@]}") 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

summary=$(grep -E '^=+ .*(passed|failed|error|skipped|xfailed|deselected|no tests ran).* in [0-9.]+s' "$log" | tail -1 \
    | sed -E 's/^=+ //; s/ =+$//' || true)
echo "== irctest summary ($server): ${summary:-none (pytest printed no summary line)}"
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "== FAIL: irctest did not finish within ${IRCTEST_TIMEOUT:-1200} s"
    exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "== FAIL: irctest against $server (pytest exit status $status)"
    exit 1
fi
echo "== ok: irctest against $server"
