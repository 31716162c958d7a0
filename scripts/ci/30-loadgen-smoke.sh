#!/usr/bin/env bash
# Load smoke: release chatd + chat-loadgen, ~1,000 clients fanning out for ~2 s, fails on any loss,
# duplicate, reordering or failed connection (chat-loadgen's exit status). Timings are printed, never asserted.
# Bounded: the build, the server and the generator each run under a timeout; what we start we stop by PID.
set -euo pipefail
cd "$(dirname "$0")/../.."

scratch=.build-ci-rel
echo "== release build (chatd, chat-loadgen)"
timeout 900 swift build -c release --scratch-path "$scratch" --product chatd 2>&1 | tail -1
timeout 600 swift build -c release --scratch-path "$scratch" --product chat-loadgen 2>&1 | tail -1
bin="$scratch/release"

# A free loopback port: ask the kernel for one.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null || echo 23999)
log=$(mktemp)
timeout 120 "$bin/chatd" --listen "127.0.0.1:$port" --message-rate 0 --max-clients-per-address 0 --connect-rate 0 \
    --max-clients 5000 --log-level warning 2>"$log" &
server=$!  # timeout's PID; chatd is its child (measured below), killing timeout stops chatd too
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -f "$log"; }
trap cleanup EXIT

for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

chatd_pid=$(pgrep -P "$server" | head -1 || true)
pid_arg=()
[ -n "$chatd_pid" ] && pid_arg=(--server-pid "$chatd_pid")
status=0
timeout 90 "$bin/chat-loadgen" --port "$port" --clients 1000 --senders 10 --rate 100 --duration 2 --warmup 0.5 \
    --drain-timeout 20 --connect-timeout 30 "${pid_arg[@]}" --label ci-smoke || status=$?
if [ "$status" -ne 0 ]; then
    echo "== chat-loadgen failed (exit $status); server log tail:"
    tail -20 "$log"
    exit 1
fi
echo "== load smoke ok"
