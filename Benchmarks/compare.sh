#!/usr/bin/env bash
# End-to-end comparison: chatd vs NIOChatServer (swift-nio's example) vs redis-server pub/sub, one after the
# other, each fresh per scenario, all driven by the same chat-loadgen scenarios on loopback. Prints one table
# with ratios against the baselines of this same run.
#
#   Benchmarks/compare.sh [--quick] [--skip-nio] [--skip-redis] [--out DIR]
#
# NIOChatServer is built from swift-nio tag $NIO_TAG (default 2.101.3) in an ignored folder
# ($ROOT/.build-nio/swift-nio), cloned from a local snapshot ($NIO_MIRROR, default /work/.mirror/apple+swift-nio/repo)
# when present; otherwise it is skipped with a message. Nothing from NIO is ever committed.
# redis-server (Debian package) runs on a loopback port with no persistence and is stopped by PID.
# Every run is bounded by timeouts; every server started here is stopped by its PID.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SCRATCH=${SCRATCH:-.build-perf-rel}
NIO_TAG=${NIO_TAG:-2.101.3}
NIO_MIRROR=${NIO_MIRROR:-/work/.mirror/apple+swift-nio/repo}
NIO_DIR="$ROOT/.build-nio/swift-nio"
OUT="$ROOT/.build-perf-results/$(date +%Y%m%d-%H%M%S)"
QUICK=0; SKIP_NIO=0; SKIP_REDIS=0
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --skip-nio) SKIP_NIO=1 ;;
        --skip-redis) SKIP_REDIS=1 ;;
        --out) OUT=$2; shift ;;
        *) echo "usage: $0 [--quick] [--skip-nio] [--skip-redis] [--out DIR]" >&2; exit 2 ;;
    esac
    shift
done
mkdir -p "$OUT"
PORT=${PORT:-24555}
DURATION=5; BIG=19000
[ "$QUICK" = 1 ] && { DURATION=2; BIG=5000; }

echo "== building chatd (release, -static-stdlib, $SCRATCH-static) and chat-loadgen (release, $SCRATCH)"
# chatd is measured as we recommend deploying it: with the Swift runtime linked statically, which saves ~3 MiB of
# resident shared-library pages (libswiftCore, libFoundationEssentials) at idle.
timeout 1200 swift build -c release --scratch-path "$SCRATCH-static" --product chatd -Xswiftc -static-stdlib 2>&1 | tail -1 || exit 1
timeout 1200 swift build -c release --scratch-path "$SCRATCH" --product chat-loadgen 2>&1 | tail -1 || exit 1
BIN="$SCRATCH-static/release"
LOADGEN="$SCRATCH/release/chat-loadgen"

NIO_BIN=""
if [ "$SKIP_NIO" = 0 ]; then
    if [ ! -d "$NIO_DIR/.git" ] && [ -d "$NIO_MIRROR" ]; then
        mkdir -p "$(dirname "$NIO_DIR")"
        git clone -q "$NIO_MIRROR" "$NIO_DIR" && git -C "$NIO_DIR" -c advice.detachedHead=false checkout -q "$NIO_TAG"
    fi
    if [ -d "$NIO_DIR/.git" ]; then
        echo "== building NIOChatServer from swift-nio $(git -C "$NIO_DIR" describe --tags 2>/dev/null) (ignored folder $NIO_DIR)"
        (cd "$NIO_DIR" && timeout 1800 swift build -c release --product NIOChatServer 2>&1 | tail -1)
        [ -x "$NIO_DIR/.build/release/NIOChatServer" ] && NIO_BIN="$NIO_DIR/.build/release/NIOChatServer"
    fi
    [ -z "$NIO_BIN" ] && echo "== NIOChatServer skipped: no swift-nio snapshot at $NIO_MIRROR (fetch github:apple/swift-nio) or its build failed"
fi
REDIS_BIN=""
if [ "$SKIP_REDIS" = 0 ]; then
    REDIS_BIN=$(command -v redis-server || true)
    [ -z "$REDIS_BIN" ] && echo "== redis-server skipped: not installed (apt-get install redis-server)"
fi

SERVER_PID=""
start_server() {  # name
    case "$1" in
        chatd)
            "$BIN/chatd" --listen "127.0.0.1:$PORT" --message-rate 0 --max-clients-per-address 0 --input-bytes-per-second 0 --connect-rate 0 --max-clients 20000 \
                --log-level error 2>>"$OUT/chatd.log" &
            ;;
        nio)
            "$NIO_BIN" 127.0.0.1 "$PORT" >>"$OUT/nio.log" 2>&1 &
            ;;
        redis)
            "$REDIS_BIN" --bind 127.0.0.1 --port "$PORT" --save "" --appendonly no --daemonize no --maxclients 19500 \
                --protected-mode no --logfile "" --dir "$OUT" >>"$OUT/redis.log" 2>&1 &
            ;;
    esac
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "   $1 did not start listening" >&2
    return 1
}
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=""
}
trap 'stop_server' EXIT INT TERM

# name|loadgen arguments
SCENARIOS=(
    "fanout-100|--scenario fanout -n 1000 -k 10 -r 100 -d $DURATION --warmup 1"
    "fanout-max|--scenario fanout -n 1000 -k 20 -r 0 --in-flight 32 -d $DURATION --warmup 1"
    "join-5000|--scenario connect -n 5000 --connect-rate 5000"
    "idle-5000|--scenario idle -n 5000 --hold 2"
    "slow|--scenario slow -n 1000 -k 10 -r 0 --in-flight 32 --slow-clients 20 -b 512 -d $DURATION --warmup 1"
    "big-$BIG|--scenario fanout -n $BIG -k 2 -r 20 -d $DURATION --warmup 1 --connect-rate 5000 --connect-timeout 120"
)

run_one() {  # server scenario-name args...
    local server=$1 name=$2; shift 2
    local proto=native
    [ "$server" = nio ] && proto=nio
    [ "$server" = redis ] && proto=redis
    # Only chatd speaks the join/slow semantics; NIOChatServer announces every connect to everyone (O(N^2)),
    # so its 19,000-client run is skipped.
    case "$server:$name" in
        nio:slow|redis:slow|nio:big-*) return 0 ;;
    esac
    start_server "$server" || return 0
    echo "== $server $name"
    timeout 300 "$LOADGEN" --port "$PORT" --protocol "$proto" --server-pid "$SERVER_PID" --label "$server" --json --quiet "$@" \
        >"$OUT/$server-$name.json" 2>"$OUT/$server-$name.err"
    echo "   exit $? $(head -c 300 "$OUT/$server-$name.err")"
    stop_server
    sleep 1
}

SERVERS=(chatd)
[ -n "$NIO_BIN" ] && SERVERS+=(nio)
[ -n "$REDIS_BIN" ] && SERVERS+=(redis)
for entry in "${SCENARIOS[@]}"; do
    name=${entry%%|*}
    args=${entry#*|}
    for server in "${SERVERS[@]}"; do
        # shellcheck disable=SC2086
        run_one "$server" "$name" $args
    done
done

echo
echo "== results ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $OUT)"
python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
def load(server, name):
    try:
        with open(os.path.join(out, f"{server}-{name}.json")) as f: return json.load(f)
    except Exception: return None
names = []
for f in sorted(os.listdir(out)):
    if f.startswith("chatd-") and f.endswith(".json"): names.append(f[len("chatd-"):-5])
order = ["fanout-100", "fanout-max", "join-5000", "idle-5000", "slow"]
names = [n for n in order if n in names] + [n for n in names if n not in order]
def fmt(v, unit=""):
    if v is None: return "-"
    if isinstance(v, float) and v >= 100: return f"{v:,.0f}{unit}"
    if isinstance(v, float): return f"{v:.2f}{unit}"
    return f"{v}{unit}"
def mib(v): return None if v is None else v / 1048576
rows = [("scenario", "server", "ok", "deliveries/s", "p99 ms", "srv ns/deliv", "gen ns/deliv", "peak RSS MiB", "B/idle conn", "connects/s")]
ratios = []
for n in names:
    base = load("chatd", n)
    for server in ["chatd", "nio", "redis"]:
        r = load(server, n)
        if r is None: continue
        rows.append((n, server, "ok" if r.get("ok") else "FAIL",
                     fmt(r.get("deliveries_per_s")) if r.get("senders") else "-",
                     fmt(r.get("latency_p99_ms")) if r.get("senders") else "-",
                     fmt(r.get("server_cpu_ns_per_delivery")), fmt(r.get("generator_cpu_ns_per_delivery")),
                     fmt(mib(r.get("server_peak_rss_bytes"))), fmt(r.get("server_rss_per_idle_connection_bytes")),
                     fmt(r.get("connects_per_s"))))
        if server != "chatd" and base:
            def ratio(key, invert=False):
                a, b = base.get(key), r.get(key)
                if not a or not b: return "-"
                return f"{(b / a if invert else a / b):.2f}x"
            ratios.append((n, f"chatd vs {server}",
                           ratio("deliveries_per_s") if r.get("senders") else "-",
                           ratio("latency_p99_ms", invert=True) if r.get("senders") else "-",
                           ratio("server_cpu_ns_per_delivery", invert=True),
                           ratio("server_peak_rss_bytes", invert=True),
                           ratio("server_rss_per_idle_connection_bytes", invert=True)))
widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
for row in rows: print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
if ratios:
    print()
    print("ratios (>1 means chatd is better: more deliveries/s; lower p99, CPU per delivery, peak RSS, RSS per idle connection)")
    head = ("scenario", "pair", "deliveries/s", "p99", "srv CPU/deliv", "peak RSS", "RSS/idle conn")
    rows2 = [head] + ratios
    widths = [max(len(str(row[i])) for row in rows2) for i in range(len(head))]
    for row in rows2: print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
PY
