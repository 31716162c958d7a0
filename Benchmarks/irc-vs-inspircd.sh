#!/usr/bin/env bash
# chatd's IRC front against InspIRCd 3.15 (Debian's /usr/sbin/inspircd), both driven by the same chat-loadgen runs
# (`--protocol irc`), alternating server by server, ROUNDS times (default 3), one fresh server per run:
#
#   max      1,000 clients in #lobby, 20 senders as fast as possible (--rate 0, <= 32 unseen messages each)
#   10x20    1,000 clients, 10 senders x 20 msg/s   (200k deliveries/s offered)
#   10x100   1,000 clients, 10 senders x 100 msg/s  (1M deliveries/s offered)
#   join5000 5,000 clients register and join #lobby; every JOIN line must reach every member present
#            (12,502,500 lines); peak RSS (VmHWM) of the server
#
#   Benchmarks/irc-vs-inspircd.sh [ROUNDS]        SCENARIOS="max 10x20" DURATION=5 to pick fewer or change them
#
# Flood limits are lifted on both. chatd: --message-rate 0 --max-clients-per-address 0 --input-bytes-per-second 0
# --connect-rate 0 --presence-delay-ms 0. InspIRCd: a config written to a temp dir: no fakelag, command rate and
# threshold 10^9, recvq 1 MiB, hardsendq 256 MiB (a client is never dropped for its send queue), no ident or DNS
# lookups, localmax/globalmax/limit 100,000; clients are put in #lobby by conn_join (InspIRCd refuses a JOIN sent
# before 001, chatd's preset sends it with NICK/USER). Server CPU per delivery = the server's CPU time over the
# measured window (sum of its threads' run time from /proc/PID/task/*/schedstat, the nanosecond form of
# utime+stime in /proc/PID/stat) / deliveries in the window. Traffic stays on 127.0.0.1 (clients from
# 127.0.0.1-8); every server is stopped by its PID; every run is bounded by `timeout`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ROUNDS=${1:-3}
SCENARIOS=${SCENARIOS:-"max 10x20 10x100 join5000"}
DURATION=${DURATION:-5}
INSPIRCD=${INSPIRCD:-/usr/sbin/inspircd}
CHATD=${CHATD:-$ROOT/.build/release/chatd}
LOADGEN=${LOADGEN:-$ROOT/.build/release/chat-loadgen}
OUT="$ROOT/.build-perf-results/irc-vs-inspircd-$(date +%Y%m%d-%H%M%S)"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/irc-vs-inspircd.XXXXXX")
mkdir -p "$OUT"
SERVER_PID=""
cleanup() { if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi; rm -rf "$TMP"; }
trap cleanup EXIT
ulimit -n 20000 2>/dev/null || true

if [ -z "${SKIP_BUILD:-}" ]; then
    timeout 1800 swift build -c release --product chatd 2>&1 | tail -1
    timeout 1800 swift build -c release --product chat-loadgen 2>&1 | tail -1
fi
echo "== $("$INSPIRCD" --version 2>&1 | head -1), chatd $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- Sources || echo +changes); results in $OUT"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

write_inspircd_config() {  # PORT DIR
    cat >"$2/inspircd.conf" <<EOF
<server name="bench.local" description="irc-vs-inspircd benchmark" network="bench">
<admin name="bench" nick="bench" email="bench@bench.local">
<bind address="127.0.0.1" port="$1" type="clients">
<connect name="main" allow="*" resolvehostnames="no" useident="no" timeout="120" pingfreq="10m"
    localmax="100000" globalmax="100000" limit="100000" maxchans="20"
    threshold="1000000000" commandrate="1000000000" fakelag="no"
    recvq="1M" softsendq="1M" hardsendq="256M">
<performance netbuffersize="65536" somaxconn="4096" softlimit="20000" clonesonconnect="no" quietbursts="yes">
<module name="conn_join">
<autojoin channel="#lobby">
<pid file="$2/inspircd.pid">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="sparse" target="$2/ircd.log">
EOF
}

wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "server on port $1 did not start" >&2; return 1; }

start_server() {  # NAME PORT CLIENTS
    local name=$1 port=$2 clients=$3
    case "$name" in
        chatd)
            "$CHATD" --listen "127.0.0.1:$(free_port)" --irc-listen "127.0.0.1:$port" --message-rate 0 \
                --max-clients-per-address 0 --input-bytes-per-second 0 --connect-rate 0 --presence-delay-ms 0 \
                --max-clients $((clients + 200)) --log-level warning 2>>"$OUT/chatd.log" &
            ;;
        inspircd)
            local dir="$TMP/inspircd-$port"
            mkdir -p "$dir"
            write_inspircd_config "$port" "$dir"
            # --runasroot: InspIRCd refuses to start as root otherwise (CI containers run as root).
            "$INSPIRCD" --config "$dir/inspircd.conf" --nofork --nopid $([ "$(id -u)" = 0 ] && echo --runasroot) \
                >>"$OUT/inspircd.log" 2>&1 &
            ;;
    esac
    SERVER_PID=$!
    wait_port "$port"
}

stop_server() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""; }

run() {  # SERVER SCENARIO ROUND
    local server=$1 scenario=$2 round=$3 port clients=1000 args=()
    port=$(free_port)
    case "$scenario" in
        max) args=(--senders 20 --rate 0 --duration "$DURATION") ;;
        10x20) args=(--senders 10 --rate 20 --duration "$DURATION") ;;
        10x100) args=(--senders 10 --rate 100 --duration "$DURATION") ;;
        join5000) clients=5000; args=(--scenario connect --connect-timeout 120) ;;
    esac
    if [ "$server" = inspircd ]; then
        args+=(--greeting 'NICK {name}\r\nUSER {name} 0 * :{name}\r\n' --ready-prefix ':bench.local 366 ')
    fi
    start_server "$server" "$port" "$clients"
    local json="$OUT/$scenario-$server-$round.json"
    timeout 300 "$LOADGEN" --protocol irc --port "$port" --clients "$clients" --source-addresses 8 "${args[@]}" \
        --server-pid "$SERVER_PID" --label "$server" --json --quiet >"$json" 2>>"$OUT/loadgen.log" || true
    stop_server
    python3 - "$json" "$server" "$scenario" "$round" <<'PY'
import json, sys
path, server, scenario, rnd = sys.argv[1:]
try:
    r = json.load(open(path))
except Exception as e:
    print(f"{scenario:9} {server:9} round {rnd}: no result ({e})"); sys.exit(0)
def g(k, d=None):
    v = r.get(k, d)
    return d if v is None else v
if scenario == "join5000":
    print(f"{scenario:9} {server:9} round {rnd}: ready {g('ready',0)}/{g('clients',0)}  JOIN lines {g('online_seen',0)}/{g('online_expected',0)}"
          f"  peak RSS {g('server_peak_rss_bytes',0)/1048576:.1f} MiB  connect {g('connect_s',0):.2f} s")
else:
    print(f"{scenario:9} {server:9} round {rnd}: {g('deliveries_per_s',0):,.0f} deliveries/s  {g('server_cpu_ns_per_delivery',0):.1f} ns CPU/delivery"
          f"  lost {g('lost',0)}  p50 {g('latency_p50_ms',0)} ms  p99 {g('latency_p99_ms',0)} ms  gen {g('generator_cpu_ns_per_delivery',0):.1f} ns  ready {g('ready',0)}/{g('clients',0)} closed {g('closed_by_server',0)}")
PY
}

for round in $(seq "$ROUNDS"); do
    for scenario in $SCENARIOS; do
        if [ $((round % 2)) = 1 ]; then order="chatd inspircd"; else order="inspircd chatd"; fi
        for server in $order; do run "$server" "$scenario" "$round"; done
    done
done

python3 - "$OUT" <<'PY'
import glob, json, os, statistics, sys
out = sys.argv[1]
runs = {}
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    scenario, server, _ = os.path.basename(path)[:-5].rsplit("-", 2)
    try:
        runs.setdefault((scenario, server), []).append(json.load(open(path)))
    except Exception:
        pass
def med(rs, key):
    vals = [r.get(key) for r in rs if r.get(key) is not None]
    return statistics.median(vals) if vals else None
print("\nmedians per scenario (chatd / InspIRCd ratios: deliveries/s >1 is chatd faster; CPU/delivery and RSS <1 is chatd cheaper)")
for scenario in ["max", "10x20", "10x100", "join5000"]:
    c, i = runs.get((scenario, "chatd")), runs.get((scenario, "inspircd"))
    if not c or not i:
        continue
    if scenario == "join5000":
        cr, ir = med(c, "server_peak_rss_bytes"), med(i, "server_peak_rss_bytes")
        cl = [f"{r.get('online_seen')}/{r.get('online_expected')}" for r in c]
        il = [f"{r.get('online_seen')}/{r.get('online_expected')}" for r in i]
        print(f"{scenario:9} peak RSS chatd {cr/1048576:.1f} MiB, InspIRCd {ir/1048576:.1f} MiB ({cr/ir:.3f}x); JOIN lines chatd {cl}, InspIRCd {il}")
        continue
    cd, idv = med(c, "deliveries_per_s"), med(i, "deliveries_per_s")
    cc, ic = med(c, "server_cpu_ns_per_delivery"), med(i, "server_cpu_ns_per_delivery")
    print(f"{scenario:9} deliveries/s chatd {cd:,.0f}, InspIRCd {idv:,.0f} ({cd/idv:.2f}x); CPU/delivery chatd {cc:.1f} ns, InspIRCd {ic:.1f} ns ({cc/ic:.3f}x);"
          f" lost chatd {[r.get('lost') for r in c]}, InspIRCd {[r.get('lost') for r in i]};"
          f" p50/p99 chatd {med(c,'latency_p50_ms')}/{med(c,'latency_p99_ms')} ms, InspIRCd {med(i,'latency_p50_ms')}/{med(i,'latency_p99_ms')} ms")
PY
