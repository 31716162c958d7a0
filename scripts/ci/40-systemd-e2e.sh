#!/usr/bin/env bash
# CI: chatd end to end under a real systemd 252, booted in a throwaway systemd-nspawn container whose root
# is a non-recursive bind of / under a tmpfs overlay (the recipe in ../shared/notes/systemd.md): nothing
# the container writes reaches the host, and the host's systemd-less state is never touched.
#
# Inside: deploy/install.sh installs the release build and the units; then chatd.socket and chatd-irc.socket
# are started, an IRC client on port 6667 starts chatd and talks with a native client on 12345, two native
# clients chat (socket activation), `systemctl reload` (RELOADING=1/READY=1, same pid, the new
# log level applies), `systemctl restart` (new pid, the socket stays), SIGSTOP freezes the loop and the
# watchdog (WatchdogSec=2s by a drop-in) restarts it, `systemctl stop` while a client is connected (it gets
# the shutdown line, the unit ends inactive, not failed), uninstall. The journal must carry chatd's syslog
# priorities (`<N>` prefixes parsed by journald) and no timestamps.
#
# Bounds: the whole script 330 s (release build up to 240 s, each container command 30 s, each wait its own
# deadline). Cleanup on any exit: power the container off, kill nspawn by its pid if it lingers, unmount.
# Env: CHATD_SCRATCH (swift build --scratch-path), default .build.
set -euo pipefail
if [ -z "${CHATD_E2E_BOUNDED:-}" ]; then
    CHATD_E2E_BOUNDED=1 exec timeout -k 15 330 bash "$0" "$@"
fi
cd "$(dirname "$0")/../.."
repo=$(pwd)
scratch=${CHATD_SCRATCH:-.build}

fail() { echo "FAIL: $*" >&2; exit 1; }
now() { date +%s; }
[ "$(id -u)" -eq 0 ] || fail "needs root (mount, systemd-nspawn)"

if ! command -v systemd-nspawn >/dev/null; then
    echo "-- installing systemd-container"
    export DEBIAN_FRONTEND=noninteractive
    timeout 120 apt-get install -y -qq systemd-container >/dev/null ||
        { timeout 120 apt-get update -qq && timeout 120 apt-get install -y -qq systemd-container >/dev/null; }
fi

echo "-- building chatd (release)"
timeout 240 swift build -c release --scratch-path "$scratch" --product chatd 2>&1 | tail -1
bindir=$(swift build -c release --scratch-path "$scratch" --show-bin-path)
[ -x "$bindir/chatd" ] || fail "no release chatd in $bindir"

root=$(mktemp -d /tmp/chatd-e2e.XXXXXX)
console=$(mktemp /tmp/chatd-e2e-console.XXXXXX)
machine=chatd-e2e-$$
nspawn= pid1=

cleanup() {
    local status=$?
    set +e
    trap - EXIT TERM INT
    if [ -n "$pid1" ] && kill -0 "$pid1" 2>/dev/null; then
        timeout 10 nsenter -t "$pid1" -a systemctl poweroff --no-block >/dev/null 2>&1
    fi
    if [ -n "$nspawn" ]; then
        local deadline=$(( $(now) + 20 ))
        while kill -0 "$nspawn" 2>/dev/null && [ "$(now)" -lt "$deadline" ]; do sleep 0.2; done
        if kill -0 "$nspawn" 2>/dev/null; then
            echo "   the container did not power off in 20 s; killing nspawn ($nspawn)"
            kill -TERM "$nspawn"; sleep 3
            kill -0 "$nspawn" 2>/dev/null && kill -KILL "$nspawn"
        fi
        wait "$nspawn" 2>/dev/null
    fi
    # The bind of / lived in nspawn's private mount namespace and went with it; this only guards a leak.
    if mountpoint -q "$root"; then umount "$root" || umount -l "$root"; fi
    rmdir "$root" 2>/dev/null
    if [ "$status" -ne 0 ] && [ -s "$console" ]; then
        echo "-- container console (last 30 lines)"; tail -30 "$console"
    fi
    rm -f "$console"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

echo "-- booting systemd in a container ($machine)"
# nspawn, the bind of / and a tmpfs on /run/systemd live in a private mount namespace: the host's mount table
# never sees them, and nspawn's bookkeeping (/run/systemd/nspawn/…) lands on that tmpfs, not on the host.
# unshare and sh exec, so $! is nspawn's own pid.
unshare --mount --propagation private -- sh -c \
    'root=$1; shift; mount -t tmpfs chatd-e2e /run/systemd && mount --bind / "$root" && exec systemd-nspawn -D "$root" "$@"' \
    sh "$root" --volatile=overlay --register=no --keep-unit --private-network --console=passive \
    -M "$machine" --bind-ro="$repo":/src --bind-ro="$bindir":/chatd-bin -b systemd.unit=basic.target \
    >"$console" 2>&1 &
nspawn=$!

deadline=$(( $(now) + 30 ))
while [ -z "$pid1" ]; do
    kill -0 "$nspawn" 2>/dev/null || fail "systemd-nspawn exited early"
    [ "$(now)" -lt "$deadline" ] || fail "no systemd inside the container after 30 s"
    for child in $(pgrep -P "$nspawn" || true) $(for c in $(pgrep -P "$nspawn" || true); do pgrep -P "$c" || true; done); do
        [ "$(cat /proc/"$child"/comm 2>/dev/null)" = systemd ] && pid1=$child
    done
    [ -n "$pid1" ] || sleep 0.2
done
inside() { timeout 30 nsenter -t "$pid1" -a "$@"; }
deadline=$(( $(now) + 60 ))
until state=$(inside systemctl is-system-running 2>/dev/null); [ "$state" = running ] || [ "$state" = degraded ]; do
    [ "$(now)" -lt "$deadline" ] || fail "container systemd not up after 60 s (state: ${state:-none})"
    sleep 0.3
done
echo "   systemd $(inside systemctl --version | head -1 | cut -d' ' -f2) is up as PID 1 ($state)"

show() { inside systemctl show -p "$1" --value chatd.service; }
# waitfor SECONDS WHAT COMMAND...: polls COMMAND until it succeeds.
waitfor() {
    local seconds=$1 what=$2; shift 2
    local deadline=$(( $(now) + seconds ))
    until "$@"; do
        [ "$(now)" -lt "$deadline" ] || fail "timed out after $seconds s waiting for $what"
        sleep 0.2
    done
}
journal() { inside journalctl -u chatd.service --no-pager -o cat "$@"; }
journal_has() { journal | grep -q -- "$1"; }
status_is_live() { show StatusText | grep -q "messages/s"; }
# The service runs again, under another main pid than $1.
restarted_from() {
    local p; p=$(show MainPID)
    [ "$p" != "$1" ] && [ "$p" != 0 ] && [ "$(inside systemctl is-active chatd.service || true)" = active ]
}

# A small client: `chat` (two clients talk), `stop` (a client is connected while `systemctl stop` runs).
client=$(cat <<'PY'
import socket, subprocess, sys
def connect(name):
    s = socket.create_connection(("127.0.0.1", 12345), timeout=10)
    f = s.makefile("r", encoding="utf-8", newline="\n")
    assert f.readline().startswith("SYS Hello"), "no greeting"
    s.sendall((name + "\n").encode())
    while True:
        line = f.readline()
        assert line, "closed before the welcome"
        if line.startswith("SYS Welcome: " + name): return s, f
def expect(f, prefix):
    while True:
        line = f.readline()
        assert line, "closed while waiting for " + prefix
        if line.startswith(prefix): return line.rstrip("\n")
if sys.argv[1] == "chat":
    tag = sys.argv[2]
    a, af = connect("alice")
    b, bf = connect("bob")
    a.sendall(("hello from alice, " + tag + "\n").encode())
    print("   bob got: " + expect(bf, "MSG #lobby alice: hello from alice, " + tag))
    a.sendall(b"/join e2e\n")  # logged at debug level: visible only after the reload to log-level = debug
    expect(af, "SYS Room: #e2e")
    a.sendall(b"/quit\n"); b.sendall(b"/quit\n")
elif sys.argv[1] == "irc":
    # IRC on chatd-irc.socket's port 6667 (this connection starts chatd), a native user on 12345.
    i = socket.create_connection(("127.0.0.1", 6667), timeout=10)
    inf = i.makefile("r", encoding="utf-8", newline="\r\n")
    i.sendall(b"NICK ivy\r\nUSER ivy 0 * :Ivy\r\nJOIN #lobby\r\n")
    expect(inf, ":")  # any line: the server answers on the IRC socket
    while " 366 ivy #lobby " not in inf.readline(): pass
    n, nf = connect("nadia")
    n.sendall(b"hello from the native port\n")
    while True:
        line = inf.readline()
        assert line, "IRC closed while waiting for the native message"
        if line.rstrip("\r\n").endswith("PRIVMSG #lobby :hello from the native port"): break
    print("   ivy (IRC, port 6667) got: " + line.rstrip("\r\n"))
    i.sendall(b"PRIVMSG #lobby :hello from the irc port\r\n")
    print("   nadia (native) got: " + expect(nf, "MSG #lobby ivy: hello from the irc port"))
    i.sendall(b"QUIT :bye\r\n"); n.sendall(b"/quit\n")
elif sys.argv[1] == "stop":
    c, cf = connect("carol")
    subprocess.run(["systemctl", "--quiet", "stop", "chatd.service"], check=True, timeout=25)
    print("   carol got: " + expect(cf, "SYS Shutdown"))
PY
)
chat() { inside /usr/bin/python3 -c "$client" chat "$1"; }

echo "-- install (deploy/install.sh) with a 2 s watchdog drop-in"
inside /src/deploy/install.sh install --binary /chatd-bin/chatd | sed 's/^/   /'
inside sh -c 'mkdir -p /etc/systemd/system/chatd.service.d && printf "%s\n" "[Service]" "WatchdogSec=2s" \
    "RestartSec=500ms" "LimitCORE=0" > /etc/systemd/system/chatd.service.d/e2e.conf && systemctl daemon-reload'
echo "   exposure under the running systemd: $(inside systemd-analyze security chatd.service --no-pager | tail -1)"

echo "-- socket activation (chatd.socket and chatd-irc.socket; an IRC client comes first)"
inside systemctl start chatd.socket chatd-irc.socket
[ "$(inside systemctl is-active chatd.socket)" = active ] || fail "chatd.socket is not active"
[ "$(inside systemctl is-active chatd-irc.socket)" = active ] || fail "chatd-irc.socket is not active"
[ "$(inside systemctl is-active chatd.service || true)" = inactive ] || fail "chatd.service started before a client came"
inside /usr/bin/python3 -c "$client" irc
chat "first"
[ "$(show ActiveState)" = active ] || fail "chatd.service is not active after a client came"
pid=$(show MainPID)
waitfor 8 "a live STATUS=" status_is_live
echo "   MainPID $pid, status: $(show StatusText)"

echo "-- systemctl reload (log-level = debug)"
inside sed -i 's/^#log-level = info$/log-level = debug/' /etc/chatd/chatd.conf
inside systemctl reload chatd.service
waitfor 10 "configuration reloaded in the journal" journal_has "configuration reloaded"
[ "$(show MainPID)" = "$pid" ] || fail "reload changed the main pid"
[ "$(show ActiveState)" = active ] || fail "not active after reload"
chat "after reload"
echo "   same pid $pid, status: $(show StatusText)"

echo "-- systemctl restart"
inside systemctl restart chatd.service
newpid=$(show MainPID)
[ "$newpid" != "$pid" ] && [ "$newpid" != 0 ] || fail "restart kept pid $pid"
[ "$(inside systemctl is-active chatd.socket)" = active ] || fail "the socket went down with the service"
chat "after restart"
echo "   MainPID $pid -> $newpid"

echo "-- SIGSTOP: the watchdog must restart a frozen loop"
restarts=$(show NRestarts)
pid=$(show MainPID)
inside kill -STOP "$pid"
stopped_at=$(now)
waitfor 20 "a watchdog restart" restarted_from "$pid"
echo "   restarted after $(( $(now) - stopped_at )) s: MainPID $pid -> $(show MainPID), NRestarts $restarts -> $(show NRestarts)"
[ "$(show NRestarts)" -gt "$restarts" ] || fail "NRestarts did not grow"
inside journalctl -u chatd.service --no-pager -o cat | grep -q "Watchdog timeout" || fail "no watchdog timeout in the journal"
chat "after the watchdog"

echo "-- systemctl stop with a client connected"
inside /usr/bin/python3 -c "$client" stop
inside systemctl stop chatd.socket chatd-irc.socket
[ "$(inside systemctl is-active chatd.service || true)" = inactive ] || fail "chatd.service is not inactive after stop"
[ "$(show Result)" = success ] || fail "stop result: $(show Result)"
[ "$(show ExecMainStatus)" = 0 ] || fail "exit status after stop: $(show ExecMainStatus)"

echo "-- the journal"
inside journalctl -b --no-pager -o cat | grep -E "chatd(-irc)?\.(service|socket).*(Unknown|ignoring|[Ii]nvalid|deprecated)" &&
    fail "systemd complained about the units"
inside journalctl -u chatd.service --no-pager -o json | /usr/bin/python3 -c '
import json, re, sys
entries = [json.loads(line) for line in sys.stdin if line.strip()]
ours = [e for e in entries if e.get("SYSLOG_IDENTIFIER") == "chatd"]
assert ours, "no chatd lines in the journal"
def text(e):
    m = e.get("MESSAGE", "")
    return m if isinstance(m, str) else bytes(m).decode("utf-8", "replace")
def first(prefix):
    return next((e for e in ours if text(e).startswith(prefix)), None)
problems = []
for message, priority in [("listening", "6"), ("SIGHUP: reloading configuration", "5"), ("configuration reloaded", "5"),
                          ("shutting down", "5"), ("stopped", "5"), ("connected", "6"), ("joined", "7")]:
    e = first(message)
    if e is None: problems.append("no line starting with %r" % message)
    elif e.get("PRIORITY") != priority: problems.append("%r has PRIORITY=%s, want %s" % (message, e.get("PRIORITY"), priority))
for e in ours:
    m = text(e)
    if re.match(r"<\d>", m) or re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", m) or "\x1b" in m:
        problems.append("not a clean journal line: %r" % m)
reloaded = next((i for i, e in enumerate(ours) if text(e).startswith("configuration reloaded")), len(ours))
early_debug = [text(e) for e in ours[:reloaded] if e.get("PRIORITY") == "7"]
if early_debug: problems.append("debug lines before the reload to log-level = debug: %r" % early_debug[:3])
priorities = sorted({e.get("PRIORITY") for e in ours})
print("   %d chatd lines, priorities %s" % (len(ours), " ".join(priorities)))
print("   excerpt (PRIORITY identifier: MESSAGE):")
interesting = [e for e in entries if e.get("SYSLOG_IDENTIFIER") != "chatd" or not text(e).startswith(("connected", "disconnected", "named", "joined"))]
for e in interesting[-30:]:
    print("     %s %s: %s" % (e.get("PRIORITY", "?"), e.get("SYSLOG_IDENTIFIER", "?"), text(e)[:150]))
if problems:
    print("\n".join("FAIL: " + p for p in problems)); sys.exit(1)
'

echo "-- uninstall"
inside /src/deploy/install.sh uninstall --purge | sed 's/^/   /'
inside test ! -e /usr/local/bin/chatd -a ! -e /etc/systemd/system/chatd.service || fail "uninstall left files"
echo "ok: chatd under systemd $(inside systemctl --version | head -1 | cut -d' ' -f2): activation, reload, restart, watchdog, stop, journal"
