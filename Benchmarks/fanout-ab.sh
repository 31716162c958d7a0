#!/usr/bin/env bash
# A/B check of the native fan-out against an earlier commit, in one sitting (this machine is shared and noisy:
# only ratios measured side by side mean anything). Builds chatd in release mode at REV (in a scratch worktree)
# and at the working tree, then runs the same chat-loadgen fanout against each, alternating, ROUNDS times, and
# prints server CPU ns per delivery for each run and the medians' ratio.
#
#   Benchmarks/fanout-ab.sh [REV] [ROUNDS]      (default: main~1 and 5)
#   CLIENTS=1000 SENDERS=10 RATE=0 DURATION=5 to change the scenario.
#   BASE_CHATD=/path/to/chatd uses that release binary as the base instead of building REV here (e.g. one built
#   in a separate clone: `git clone /work/main /tmp/base && (cd /tmp/base && swift build -c release --product chatd)`),
#   so no worktree is added to the repository.
# Every server started here is stopped by its PID; traffic goes to 127.0.0.1 only.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
REV=${1:-main~1}
ROUNDS=${2:-5}
CLIENTS=${CLIENTS:-1000}; SENDERS=${SENDERS:-10}; RATE=${RATE:-0}; DURATION=${DURATION:-5}
BASE="$ROOT/.build-ab/base"
OUT="$ROOT/.build-ab/results"
mkdir -p "$OUT"
if [ -n "${BASE_CHATD:-}" ]; then
    BASE_BIN=$BASE_CHATD
    echo "== base: $BASE_BIN ($(sha256sum "$BASE_BIN" | cut -c1-16)); building chatd at the working tree, release"
else
    rm -rf "$BASE"; git worktree prune
    git worktree add --detach "$BASE" "$REV" >/dev/null
    trap 'git -C "$ROOT" worktree remove --force "$BASE" >/dev/null 2>&1 || true' EXIT
    echo "== building chatd at $REV ($(git rev-parse --short "$REV")) and at the working tree, release"
    (cd "$BASE" && swift build -c release --product chatd 2>&1 | tail -1)
    BASE_BIN="$BASE/.build/release/chatd"
fi
swift build -c release --product chatd 2>&1 | tail -1
swift build -c release --product chat-loadgen 2>&1 | tail -1
LOADGEN="$ROOT/.build/release/chat-loadgen"

run() {  # run LABEL BINARY -> prints ns per delivery
    local label=$1 binary=$2 port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$binary" --listen "127.0.0.1:$port" --message-rate 0 --max-clients-per-address 0 --input-bytes-per-second 0 \
        --connect-rate 0 --max-clients $((CLIENTS + 100)) --log-level warning 2>"$OUT/$label.log" &
    local pid=$!
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    timeout 120 "$LOADGEN" --port "$port" --clients "$CLIENTS" --senders "$SENDERS" --rate "$RATE" \
        --duration "$DURATION" --server-pid "$pid" --json --quiet >"$OUT/$label.json" || echo "loadgen failed ($label)" >&2
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r.get("server_cpu_ns_per_delivery") or r.get("serverCPUNanosecondsPerDelivery") or r)' "$OUT/$label.json"
}

base=(); new=()
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then
        b=$(run "base-$round" "$BASE_BIN"); n=$(run "new-$round" "$ROOT/.build/release/chatd")
    else
        n=$(run "new-$round" "$ROOT/.build/release/chatd"); b=$(run "base-$round" "$BASE_BIN")
    fi
    echo "round $round: base $b ns, new $n ns per delivery"
    base+=("$b"); new+=("$n")
done
python3 - "${base[*]}" "${new[*]}" <<'PY'
import statistics, sys
b = [float(x) for x in sys.argv[1].split()]; n = [float(x) for x in sys.argv[2].split()]
mb, mn = statistics.median(b), statistics.median(n)
print(f"median server CPU per delivery: base {mb:.1f} ns, new {mn:.1f} ns, new/base {mn/mb:.3f}")
PY
