#!/usr/bin/env bash
# IRC fan-out beside native fan-out, in one sitting: one release chatd per run with both fronts, chat-loadgen's
# `irc` and `native` presets alternating, ROUNDS times (default 3). Prints server CPU ns per delivery,
# deliveries/s, losses and p50 latency per run. CLIENTS=1000 SENDERS=10 RATE=0 DURATION=5 change the scenario.
# Traffic goes to 127.0.0.1 only; every server started here is stopped by its PID.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ROUNDS=${1:-3}
CLIENTS=${CLIENTS:-1000}; SENDERS=${SENDERS:-10}; RATE=${RATE:-0}; DURATION=${DURATION:-5}
OUT="$ROOT/.build-ab/irc"
mkdir -p "$OUT"
swift build -c release --product chatd 2>&1 | tail -1
swift build -c release --product chat-loadgen 2>&1 | tail -1
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run() {  # run PROTOCOL ROUND
    local proto=$1 round=$2 port irc pid target
    port=$(free_port); irc=$(free_port)
    .build/release/chatd --listen "127.0.0.1:$port" --irc-listen "127.0.0.1:$irc" --message-rate 0 \
        --max-clients-per-address 0 --input-bytes-per-second 0 --connect-rate 0 --presence-delay-ms 0 \
        --max-clients $((CLIENTS + 200)) --log-level warning 2>"$OUT/$proto-$round.log" &
    pid=$!
    target=$port; [ "$proto" = irc ] && target=$irc
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$target") 2>/dev/null && break; sleep 0.1; done
    timeout 120 .build/release/chat-loadgen --protocol "$proto" --port "$target" --clients "$CLIENTS" --senders "$SENDERS" \
        --rate "$RATE" --duration "$DURATION" --server-pid "$pid" --json --quiet >"$OUT/$proto-$round.json" || echo "loadgen failed ($proto)" >&2
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("%-6s %.1f ns/delivery  %d deliveries/s  lost %s  p50 %s ms" % (sys.argv[2], r["server_cpu_ns_per_delivery"], r["deliveries_per_s"], r["lost"], r["latency_p50_ms"]))' \
        "$OUT/$proto-$round.json" "$proto"
}

for round in $(seq "$ROUNDS"); do run native "$round"; run irc "$round"; done
