#!/usr/bin/env bash
# Real IRC clients against chatd: irssi 1.4 (in tmux) and weechat-headless 3.8 talk with a native client in
# #lobby (joins, messages every way, /me, a topic set from irssi, private messages each way, quits); each
# side's view is checked and printed. scripts/irc/clients.py does the driving; this builds chatd and bounds it.
#
#   scripts/irc/clients.sh [--server chatd|inspircd] [clients.py options...]
#
# --server inspircd (apt-get install -y inspircd) runs only the two IRC clients, against Debian's InspIRCd:
# it proves the driving and the reading without chatd. Needs tmux, irssi, weechat-headless, weechat-plugins
# (its FIFO plugin). CHATD_BIN picks the binary (default .build/debug/chatd, built if missing);
# CLIENTS_TIMEOUT bounds the run (default 300 s); the screens and logs go to CLIENTS_ARTIFACTS if set.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)

server=chatd
args=()
while (($#)); do
    case "$1" in
        --server) server=${2:?--server needs chatd or inspircd}; args+=("$1" "$2"); shift 2 ;;
        --server=*) server=${1#--server=}; args+=("$1"); shift ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; python3 "$repo/scripts/irc/clients.py" --help; exit 0 ;;
        *) args+=("$1"); shift ;;
    esac
done

if [ "$server" = chatd ]; then
    if [ -z "${CHATD_BIN:-}" ]; then
        export CHATD_BIN="$repo/.build/debug/chatd"
        echo "== swift build --product chatd"
        (cd "$repo" && timeout 1200 swift build --product chatd 2>&1 | tail -1)
    fi
    [ -x "$CHATD_BIN" ] || { echo "== FAIL: no chatd binary at $CHATD_BIN"; exit 1; }
    # The help text in a variable first: with pipefail, grep -q closing the pipe early fails the pipeline.
    chatd_help=$("$CHATD_BIN" --help 2>&1 || true)
    if ! grep -q -- --irc-listen <<<"$chatd_help"; then
        echo "== FAIL: $CHATD_BIN has no --irc-listen option (the IRC front is not there yet)"
        exit 1
    fi
    export CHATD_BIN=$(realpath "$CHATD_BIN")
fi
for tool in tmux irssi weechat-headless; do
    command -v "$tool" >/dev/null || { echo "== FAIL: $tool is not installed"; exit 1; }
done
echo "== $(irssi --version | head -1); weechat-headless $(weechat-headless --version 2>/dev/null | head -1)"

artifacts=()
[ -n "${CLIENTS_ARTIFACTS:-}" ] && artifacts=(--artifacts "$CLIENTS_ARTIFACTS")
limit=${CLIENTS_TIMEOUT:-300}
set +e
# clients.py stops everything it started on SIGTERM (and on its own --timeout, set 20 s shorter);
# SIGKILL 20 s later only if it hangs in that.
timeout -k 20 "$limit" python3 "$repo/scripts/irc/clients.py" --timeout $((limit - 20)) "${artifacts[@]}" "${args[@]}"
status=$?
set -e
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "== FAIL: the client test did not finish within $limit s"
    exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "== FAIL: real IRC clients against $server"
    exit 1
fi
echo "== ok: real IRC clients against $server"
