#!/usr/bin/env bash
# IRC fan-out beside native fan-out, in one sitting: one release chatd per run with both fronts, chat-loadgen's
# `irc` and `native` presets alternating, ROUNDS times (default 3). Prints server CPU ns per delivery,
# deliveries/s, losses and p50 latency per run, then the medians, IRC / native, and the same per delivered byte
# (an IRC line, `:lg0!~lg0@127.0.0.1 PRIVMSG #lobby :` + text + CRLF, is ~1.26x the native `MSG #lobby lg0: ` +
# text + LF at 64-byte texts, and most of the cost per delivery is the kernel's copy and TCP work).
# CLIENTS=1000 SENDERS=10 RATE=0 DURATION=5 change the scenario: RATE=0 is as fast as the generator goes (then
# the generator's speed sets how many lines each write carries, which differs by protocol); a fixed RATE that
# both keep up with (RATE=200: 2M deliveries/s) gives both the same lines per write.
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

for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then run native "$round"; run irc "$round"; else run irc "$round"; run native "$round"; fi
done
python3 - "$OUT" "$ROUNDS" "$SENDERS" <<'PY'
import json, statistics, sys
out, rounds, senders = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def load(proto):
    return [json.load(open(f"{out}/{proto}-{r}.json")) for r in range(1, rounds + 1)]
def line_bytes(proto, payload):
    # Senders are clients 0..K-1, named lg0..; clients come from 127.0.0.1..4 (chat-loadgen's default spread).
    if proto == "native":
        lengths = [len(f"MSG #lobby lg{s}: ") + payload + 1 for s in range(senders)]
    else:
        lengths = [len(f":lg{s}!~lg{s}@127.0.0.{1 + s % 4} PRIVMSG #lobby :") + payload + 2 for s in range(senders)]
    return sum(lengths) / len(lengths)
med = {}
for proto in ("native", "irc"):
    rs = load(proto)
    ns = statistics.median(r["server_cpu_ns_per_delivery"] for r in rs)
    rate = statistics.median(r["deliveries_per_s"] for r in rs)
    b = line_bytes(proto, rs[0]["payload_bytes"])
    med[proto] = (ns, rate, b)
    print(f"median {proto:6} {ns:.1f} ns/delivery  {rate:,.0f} deliveries/s  {b:.0f} B/line  {ns / b:.3f} ns/byte  lost {[r['lost'] for r in rs]}")
(n_ns, n_rate, n_b), (i_ns, i_rate, i_b) = med["native"], med["irc"]
print(f"IRC / native: {i_ns / n_ns:.3f}x CPU per delivery, {(i_ns / i_b) / (n_ns / n_b):.3f}x per byte, {i_rate / n_rate:.3f}x deliveries/s")
PY
