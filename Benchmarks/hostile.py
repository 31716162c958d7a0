#!/usr/bin/env python3
"""Hostile-input measurements for chatd (issue 9, "Done when"): the figures behind findings 3, 6, 7 and 8.

Starts the given chatd itself on a free loopback port (one fresh server per scenario, only the flags the
scenario needs, so every other limit is at its default), runs each scenario for a bounded time, stops the
server by its PID (also on failure) and prints a table; --json writes everything measured.

Every scenario reports the server's CPU (utime + stime from /proc/PID/stat over the measured window, as %
of one core) and the latency a normal user sees: a probe process (a separate Python process, so the
attack threads cannot delay it through the GIL) has three senders post a timestamped line into #lobby
every 20 ms in turn (each 16.7 lines/s, under the default rate limit) and a fourth client measure when
each arrives. Probes come from 127.0.0.2, attackers from 127.0.0.1 (room holders from 127.0.0.10-109),
so per-address limits on the attacker do not hit the probe. Traffic goes only to 127.0.0.1.

Scenarios (default: all, in this order):
  privmsg-flood     finding 3: a victim reads as fast as it can; 4 senders each send 40 x `/msg victim <4 KB>`
                    at once (one round every 2 s, fresh clients each round). Victim dropped? PRIV delivered,
                    ERR lines the senders got (by code), and delivered + told == sent, or the gap.
  rooms-pipeline    finding 3: 1,000 rooms exist; a client pipelines 20 `/rooms` and reads as fast as it can
                    (one round per second, a fresh client each). Dropped? Replies received.
  reconnect-flood   finding 6: 16 threads from one IP connect, send a name and 40 lines, close, repeat.
                    Connections made; lines/s a lobby member receives (MSG, SYS Online, SYS Offline).
  empty-line-flood  finding 7: 16 named connections write 64 KiB of `\\n` in a loop and never read.
  overlong-flood    finding 7: one named connection writes a line that never ends (64 KiB chunks, no `\\n`).
                    Both: MiB/s written and MiB/s the server actually read (written minus what still sits in
                    the socket queues at the end, from /proc/net/tcp).
  rooms-cpu         finding 8: 1,000 rooms with 32-character CJK names (128 bytes, held by clients that stay),
                    then 200 clients from one IP each send `/rooms` 20 times a second. Replies/s, drops.

Refusals, rate limits and drops are results (counted by their ERR code), never failures of the tool.
Every loop is bounded in count and time; a whole run takes about 70 s (setups and drains included).

Usage: Benchmarks/hostile.py --chatd PATH [--scenario NAME ...] [--duration S] [--json FILE]
"""
import argparse
import collections
import ctypes
import errno
import hashlib
import json
import os
import random
import re
import resource
import select
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HOST = "127.0.0.1"
ATTACKER = "127.0.0.1"
PROBE_SRC = "127.0.0.2"
VICTIM_SRC = "127.0.0.3"
HOLDER_SRCS = [f"127.0.0.{10 + i}" for i in range(100)]
ORDER = ["privmsg-flood", "rooms-pipeline", "reconnect-flood", "empty-line-flood", "overlong-flood", "rooms-cpu"]
CLK_TCK = os.sysconf("SC_CLK_TCK")
SAMPLE_EVERY = 100  # reconnect-flood: one connection in this many waits for the server's answer
DRAIN_S = 5.0  # after a scenario, how long the probe waits for its last lines
ERR_CODE = re.compile(rb"ERR (\S+)")
# Codes that are about the name itself (retrying the same name cannot help); everything else a login gets
# (server-full, too-many-connections, a future throttle, a reset, a timeout) is worth a slower retry.
NAME_CODES = {"name-invalid", "name-taken"}
# ERR codes that today's chatd sends only as a client's last line before it closes the connection (the
# close itself may come later than the line when the server runs behind).
DROP_CODES = {"queue-overflow", "write-timeout", "idle-timeout", "name-timeout"}


# ---------------------------------------------------------------------------------------------- helpers

def now():
    return time.monotonic()


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(round(q * (len(sorted_values) - 1))))]


def errno_name(error):
    if isinstance(error, socket.timeout):
        return "timeout"
    code = getattr(error, "errno", None)
    return errno.errorcode.get(code, str(error)) if code else type(error).__name__


def find_lines(block, marker):
    """Yields each line of `block` (which starts with b"\\n" and ends with b"\\n") that starts with `marker`,
    without the marker. A C-speed find per hit, so a flood of other lines costs nothing here."""
    needle = b"\n" + marker
    pos = block.find(needle)
    while pos >= 0:
        start = pos + len(needle)
        end = block.find(b"\n", start)
        yield block[start:end]
        pos = block.find(needle, end)


class LineChunks:
    """Splits a byte stream into blocks of whole lines (b"\\n" + lines), keeping the partial tail."""
    __slots__ = ("tail",)

    def __init__(self, initial=b""):
        self.tail = initial

    def feed(self, data):
        data = self.tail + data
        last = data.rfind(b"\n")
        if last < 0:
            self.tail = data[-65536:] if len(data) > 1 << 20 else data  # bounded even for a line that never ends
            return None
        self.tail = data[last + 1:]
        return b"\n" + data[:last + 1]


class Refused(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


def connect(port, src, timeout=2.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        if src:
            s.bind((src, 0))
        s.connect((HOST, port))
        return s
    except BaseException:
        s.close()
        raise


def login(port, name, src, timeout=3.0, extra=b""):
    """Connects, sends the name (and `extra` lines right behind it), waits for the Welcome.
    Returns (socket, bytes received after the Welcome line). Raises Refused(code)."""
    try:
        s = connect(port, src, timeout)
    except OSError as error:
        raise Refused(errno_name(error))
    deadline = now() + timeout
    buf = b""
    try:
        s.sendall(name.encode() + b"\n" + extra)
        while True:
            left = deadline - now()
            if left <= 0:
                raise Refused("timeout")
            s.settimeout(left)
            data = s.recv(65536)
            if not data:
                m = ERR_CODE.search(buf)
                raise Refused(m.group(1).decode() if m else "closed")
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.startswith(b"SYS Welcome"):
                    return s, buf
                if line.startswith(b"ERR "):
                    m = ERR_CODE.match(line)
                    raise Refused(m.group(1).decode())
    except Refused:
        s.close()
        raise
    except OSError as error:
        s.close()
        raise Refused(errno_name(error))


def login_retry(port, name, src, deadline, codes, extra=b""):
    """login() with a growing pause after a refusal, until `deadline`. Refusals are counted in `codes`."""
    pause = 0.05
    while True:
        try:
            return login(port, name, src, extra=extra)
        except Refused as error:
            codes[error.code] += 1
            if error.code in NAME_CODES or now() + pause >= deadline:
                return None
            time.sleep(pause)
            pause = min(pause * 2, 1.0)


def login_many(port, specs, deadline, codes, want=b"SYS Welcome", fatal=NAME_CODES, batch=100):
    """Logs in many clients concurrently, `batch` at a time: specs are (name, source address, extra lines
    sent right behind the name); a client is done when a line starting with `want` arrives. (One at a time
    would take ~20 ms each: a reply within flush-interval-ms of the previous write to that client waits.)
    Refused ones are retried more slowly until `deadline`, except for a code in `fatal`.
    Returns {spec index: (non-blocking socket, bytes after the `want` line)}; refusals are counted in `codes`."""
    results = {}
    pending = list(range(len(specs)))
    pause = 0.05
    while pending and now() < deadline:
        current, pending = pending[:batch], pending[batch:]
        retry = []
        live = {}
        sel = selectors.DefaultSelector()
        for i in current:
            name, src, extra = specs[i]
            try:
                s = connect(port, src, 2.0)
                s.sendall(name.encode() + b"\n" + extra)
            except OSError as error:
                codes[errno_name(error)] += 1
                retry.append(i)
                continue
            s.setblocking(False)
            live[s] = [i, b""]
            sel.register(s, selectors.EVENT_READ)
        batch_deadline = min(deadline, now() + 5)
        while live and now() < batch_deadline:
            for key, _ in sel.select(0.1):
                s = key.fileobj
                i, buf = live[s]
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    continue
                except OSError as error:
                    data, buf = b"", buf + f"ERR {errno_name(error)}\n".encode()
                outcome = None
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.startswith(want):
                        outcome = "ok"
                        break
                    if line.startswith(b"ERR "):
                        outcome = ERR_CODE.match(line).group(1).decode()
                        break
                if outcome is None and not data:
                    outcome = "closed"
                if outcome is None:
                    live[s][1] = buf
                    continue
                sel.unregister(s)
                del live[s]
                if outcome == "ok":
                    results[i] = (s, buf)
                    continue
                s.close()
                codes[outcome] += 1
                if outcome not in fatal:
                    retry.append(i)
        for s, (i, _) in live.items():
            codes["timeout"] += 1
            s.close()
            retry.append(i)
        sel.close()
        if retry:
            pending += retry
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
    return results


def drain_errors(sock, limit=8 << 20):
    """Reads what is already queued on a socket that never read (non-blocking, bounded) and counts its ERR codes."""
    codes = collections.Counter()
    chunks = LineChunks()
    got = 0
    closed = False
    sock.setblocking(False)
    try:
        while got < limit:
            data = sock.recv(1 << 20)
            if not data:
                closed = True
                break
            got += len(data)
            block = chunks.feed(data)
            if block:
                for rest in find_lines(block, b"ERR "):
                    codes[rest.split(b" ", 1)[0].decode(errors="replace")] += 1
    except BlockingIOError:
        pass
    except OSError:
        closed = True
    return codes, closed


def tcp_queues(port_pairs):
    """Bytes still in kernel queues for each (local, remote) port pair, from /proc/net/tcp: the receive queue
    of the server's end plus the send queue of ours."""
    wanted = set(port_pairs) | {(r, l) for l, r in port_pairs}
    server_rx = client_tx = 0
    ours = {l for l, _ in port_pairs}
    with open("/proc/net/tcp") as f:
        next(f)
        for row in f:
            parts = row.split()
            local = int(parts[1].split(":")[1], 16)
            remote = int(parts[2].split(":")[1], 16)
            if (local, remote) not in wanted:
                continue
            tx, rx = (int(x, 16) for x in parts[4].split(":"))
            if local in ours:
                client_tx += tx
            else:
                server_rx += rx
    return server_rx + client_tx


# ------------------------------------------------------------------------------------------ the server

def die_with_parent():
    """In the child before exec: SIGKILL it if this tool dies, even by SIGKILL (prctl PR_SET_PDEATHSIG),
    so that no chatd outlives a run whatever happens to the tool."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Chatd:
    """One chatd process on 127.0.0.1, port chosen by the kernel; stopped by its PID."""

    def __init__(self, binary, flags, workdir, label):
        self.binary = binary
        self.flags = flags
        self.log_path = os.path.join(workdir, f"chatd-{label}.log")
        self.proc = None
        self.port = None

    def start(self):
        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen([self.binary, "--listen", f"{HOST}:0", *self.flags],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                         preexec_fn=die_with_parent)
        finally:
            log.close()
        deadline = now() + 15
        while now() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chatd exited at start ({self.proc.returncode}): {self.log_tail()}")
            self.port = self._listening_port()
            if self.port:
                return
            time.sleep(0.05)
        raise RuntimeError("chatd did not listen within 15 s")

    def _listening_port(self):
        pid = self.proc.pid
        inodes = set()
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
            with open("/proc/net/tcp") as f:
                next(f)
                for row in f:
                    parts = row.split()
                    if parts[3] == "0A" and parts[9] in inodes:
                        return int(parts[1].split(":")[1], 16)
        except OSError:
            return None
        return None

    def cpu_seconds(self):
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, IndexError):
            return None

    def voluntary_switches(self):
        """Times the process blocked (in epoll_wait, mostly). Near 0 over a window: its loop always had work,
        so it was saturated, whatever CPU share the rest of the machine left it."""
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def peak_rss_mib(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return round(int(line.split()[1]) / 1024, 1)
        except OSError:
            return None
        return None

    def exit_status(self):
        """None while running, else the exit code (negative: killed by that signal)."""
        return self.proc.poll() if self.proc else None

    def log_tail(self, lines=5):
        try:
            with open(self.log_path, "rb") as f:
                return b"".join(f.readlines()[-lines:]).decode(errors="replace").strip()
        except OSError:
            return ""

    def stop(self):
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # Popen signals its own PID only
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ------------------------------------------------------------------------------------------- the probe

def probe_child(argv):
    """Runs in its own process: prints `ready` once its clients are named, posts and measures until a line
    `stop` (or EOF) arrives on stdin, then drains for up to 1.5 s and prints one JSON object."""
    ap = argparse.ArgumentParser(prog="hostile.py --probe-child")
    ap.add_argument("--probe-child", type=int, required=True, help="server port")
    ap.add_argument("--src", default=PROBE_SRC)
    ap.add_argument("--senders", type=int, default=3)
    ap.add_argument("--interval", type=float, default=0.02)
    ap.add_argument("--watch", action="append", default=[], help="name prefix whose Offline lines are kept")
    args = ap.parse_args(argv)
    port = args.probe_child
    codes = collections.Counter()
    deadline = now() + 15
    rx = login_retry(port, "probeRx", args.src, deadline, codes)
    txs = [login_retry(port, f"probeTx{i}", args.src, deadline, codes) for i in range(args.senders)]
    if rx is None or None in txs:
        print(json.dumps({"error": f"probe could not log in: {dict(codes)}"}), flush=True)
        return 1
    print("ready", flush=True)

    sel = selectors.DefaultSelector()
    rx_sock, rx_rest = rx
    rx_sock.setblocking(False)
    rx_chunks = LineChunks(rx_rest)
    sel.register(rx_sock, selectors.EVENT_READ, "rx")
    tx_socks = []
    for i, (s, rest) in enumerate(txs):
        s.setblocking(False)
        tx_socks.append(s)
        sel.register(s, selectors.EVENT_READ, ("tx", i, LineChunks(rest)))
    sel.register(sys.stdin, selectors.EVENT_READ, "stdin")

    sent_at = {}
    latencies = []
    counts = collections.Counter()
    rx_errors = collections.Counter()
    tx_errors = collections.Counter()
    offline_reasons = collections.Counter()
    watched = []
    missed = 0
    seq = 0
    send_blocked = 0
    rx_closed = None
    next_send = now()
    stop_at = None
    started = now()
    digits = re.compile(rb"\d+")

    while True:
        t = now()
        if stop_at is None and t - started > 600:
            stop_at = t  # the parent is gone or stuck: never run unbounded
        if stop_at is not None and (len(latencies) >= len(sent_at) or t - stop_at > DRAIN_S or rx_closed):
            break
        if stop_at is None and t >= next_send:
            s = tx_socks[seq % len(tx_socks)]
            stamp = time.monotonic_ns()
            try:
                s.send(f"PRB {seq} {stamp}\n".encode(), socket.MSG_DONTWAIT)
                sent_at[seq] = stamp
            except BlockingIOError:
                send_blocked += 1
            except OSError:
                counts["tx_send_error"] += 1
            seq += 1
            # Never catch up in a burst: that would cross the rate limit and measure our own backlog.
            next_send = max(next_send + args.interval, t)
        timeout = 0.1 if stop_at is not None else max(0.0, next_send - now())
        for key, _ in sel.select(timeout):
            tag = key.data
            if tag == "stdin":
                line = sys.stdin.readline()
                if stop_at is None and (not line or line.strip() == "stop"):
                    stop_at = now()
                    sel.unregister(sys.stdin)
                continue
            try:
                data = key.fileobj.recv(1 << 20)
            except BlockingIOError:
                continue
            except OSError as error:
                data = b""
                if tag == "rx":
                    rx_closed = errno_name(error)
            arrival = time.monotonic_ns()
            if not data:
                sel.unregister(key.fileobj)
                if tag == "rx":
                    rx_closed = rx_closed or "closed"
                else:
                    counts["tx_closed"] += 1
                continue
            if tag != "rx":
                block = tag[2].feed(data)
                if block:
                    for rest in find_lines(block, b"ERR "):
                        tx_errors[rest.split(b" ", 1)[0].decode(errors="replace")] += 1
                continue
            counts["bytes"] += len(data)
            block = rx_chunks.feed(data)
            if not block:
                continue
            counts["lines"] += block.count(b"\n") - 1
            counts["msg"] += block.count(b"\nMSG ")
            counts["sys"] += block.count(b"\nSYS ")
            counts["sys_online"] += block.count(b"\nSYS #lobby Online: ")
            counts["sys_offline"] += block.count(b"\nSYS #lobby Offline: ")
            counts["act"] += block.count(b"\nACT ")
            counts["priv"] += block.count(b"\nPRIV ")
            for rest in find_lines(block, b"MSG #lobby probeTx"):
                fields = rest.split(b": PRB ", 1)
                if len(fields) == 2:
                    parts = fields[1].split(b" ")
                    if len(parts) == 2 and int(parts[0]) in sent_at:
                        latencies.append(arrival - int(parts[1]))
                        counts["probe"] += 1
            for rest in find_lines(block, b"SYS #lobby Offline: "):
                name, _, reason = rest.partition(b" (")
                offline_reasons[digits.sub(b"N", reason[:-1] if reason.endswith(b")") else reason).decode(errors="replace")] += 1
                if len(watched) < 200 and any(name.startswith(p.encode()) for p in args.watch):
                    watched.append(rest.decode(errors="replace"))
            for rest in find_lines(block, b"SYS Missed: "):
                try:
                    missed += int(rest.split(b" ", 1)[0])
                except ValueError:
                    pass
            for rest in find_lines(block, b"ERR "):
                rx_errors[rest.split(b" ", 1)[0].decode(errors="replace")] += 1

    window = (stop_at or now()) - started
    latencies.sort()
    # A probe still missing after the drain took longer than DRAIN_S: it counts as infinitely late, so a
    # percentile that falls on one is reported as null ("more than DRAIN_S"), never as a flattering number.
    ms = [v / 1e6 for v in latencies] + [float("inf")] * (len(sent_at) - len(latencies))
    finite = lambda v: None if v is None or v == float("inf") else round(v, 3)
    counts["msg_other"] = counts["msg"] - counts["probe"]
    result = {
        "window_s": round(window, 3),
        "probes_sent": len(sent_at),
        "probes_received": len(latencies),
        "probes_lost": len(sent_at) - len(latencies),
        "send_blocked": send_blocked,
        "latency_ms": {"median": finite(percentile(ms, 0.5)), "p99": finite(percentile(ms, 0.99)),
                       "max": finite(ms[-1] if ms else None)},
        "drain_s": DRAIN_S,
        "lobby_member": dict(counts),
        "lobby_member_missed": missed,
        "lobby_member_errors": dict(rx_errors),
        "lobby_member_closed": rx_closed,
        "probe_sender_errors": dict(tx_errors),
        "probe_sender_closed": counts.pop("tx_closed", 0),
        "offline_reasons": dict(offline_reasons.most_common(12)),
        "watched_offline": watched,
    }
    print(json.dumps(result), flush=True)
    for s in [rx_sock, *tx_socks]:
        s.close()
    return 0


class Probe:
    """The parent's handle on the probe process."""

    def __init__(self, port, watch=()):
        cmd = [sys.executable, os.path.abspath(__file__), "--probe-child", str(port)]
        for prefix in watch:
            cmd += ["--watch", prefix]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        poller = select.poll()  # not select(): with 1,000 room holders open, descriptors pass 1024
        poller.register(self.proc.stdout, select.POLLIN)
        line = self.proc.stdout.readline() if poller.poll(20_000) else b""
        if line.strip() != b"ready":
            self.kill()
            raise RuntimeError(f"probe did not start: {line[:300]!r}")

    def stop(self):
        try:
            self.proc.stdin.write(b"stop\n")
            self.proc.stdin.flush()
            out, _ = self.proc.communicate(timeout=15)
            return json.loads(out.decode().strip().splitlines()[-1])
        except (subprocess.TimeoutExpired, ValueError, IndexError, OSError) as error:
            self.kill()
            return {"error": f"probe: {error}"}

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()  # its own PID
            self.proc.wait()


# ----------------------------------------------------------------------------------- shared set-ups

class Drainer:
    """Reads and discards everything sent to a set of idle clients (room holders), so none becomes a slow
    reader; counts the ones the server closes."""

    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.lock = threading.Lock()
        self.socks = []
        self.closed = 0
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def add(self, sock):
        sock.setblocking(False)
        with self.lock:
            self.socks.append(sock)
            self.sel.register(sock, selectors.EVENT_READ)

    def _run(self):
        while self.running:
            with self.lock:
                empty = not self.socks
            if empty:
                time.sleep(0.05)
                continue
            for key, _ in self.sel.select(0.1):
                try:
                    data = key.fileobj.recv(1 << 16)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    with self.lock:
                        self.sel.unregister(key.fileobj)
                        self.closed += 1

    def close(self):
        self.running = False
        self.thread.join(2)
        for s in self.socks:
            s.close()


def cjk_room_names(count, seed=9):
    """`count` distinct room names of 32 random CJK Extension B ideographs: 128 bytes, the longest name
    allowed, so a `/rooms` reply (100 rooms listed) is ~13 KB."""
    rng = random.Random(seed)
    names = []
    seen = set()
    while len(names) < count:
        name = "".join(chr(0x20000 + rng.randrange(0xA6E0)) for _ in range(32))
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


class RoomHolders:
    """Creates `count` rooms, each held by one client that joins and stays (spread over 100 source
    addresses, 10 clients each, one connection at a time, so neither the per-address limit nor the rate
    limit is an issue; refusals are retried more slowly)."""

    def __init__(self, count=1000):
        self.count = count
        self.drainer = None
        self.result = {}

    def setup(self, port, budget=45.0):
        self.drainer = Drainer()
        names = cjk_room_names(self.count)
        codes = collections.Counter()
        started = now()
        deadline = started + budget
        # The first holder alone: if a later name rule refuses Extension B, fall back to BMP ideographs.
        fallback = False
        got = login_retry(port, "holder0000", HOLDER_SRCS[0], deadline, codes)
        created = 0
        if got:
            reply = self._join(got[0], got[1], names[0])
            if reply == "room-invalid":
                fallback = True
                names = ["".join(chr(0x4E00 + (ord(c) - 0x20000) % 0x5200) for c in n) for n in names]
                reply = self._join(got[0], b"", names[0])
            if reply == "ok":
                created += 1
                self.drainer.add(got[0])
            else:
                codes[reply] += 1
                got[0].close()
        specs = [(f"holder{i:04d}", HOLDER_SRCS[i % len(HOLDER_SRCS)], f"/join {names[i]}\n".encode())
                 for i in range(1, self.count)]
        joined = login_many(port, specs, deadline, codes, want=b"SYS Room: #",
                            fatal=NAME_CODES | {"too-many-rooms", "room-invalid", "name-required"})
        for sock, _ in joined.values():
            self.drainer.add(sock)
        created += len(joined)
        self.result = {"rooms_created": created, "rooms_wanted": self.count, "bmp_fallback": fallback,
                       "setup_s": round(now() - started, 2), "setup_refusals": dict(codes)}
        return self.result

    @staticmethod
    def _join(sock, rest, room):
        sock.settimeout(5)
        buf = rest
        try:
            sock.sendall(f"/join {room}\n".encode())
            deadline = now() + 5
            while now() < deadline:
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.startswith(b"SYS Room: #"):
                        return "ok"
                    if line.startswith(b"ERR "):
                        return ERR_CODE.match(line).group(1).decode()
                data = sock.recv(65536)
                if not data:
                    return "closed"
                buf += data
        except OSError as error:
            return errno_name(error)
        return "timeout"

    def teardown(self):
        if self.drainer:
            self.drainer.close()


# ------------------------------------------------------------------------------------------- scenarios

class Scenario:
    name = ""
    flags = []
    watch = ()
    summary_keys = ()

    def setup(self, port):
        return {}

    def run(self, port, duration):
        raise NotImplementedError

    def teardown(self):
        pass

    def summary(self, r):
        return ""


class PrivmsgFlood(Scenario):
    name = "privmsg-flood"
    watch = ("victim",)
    senders = 4
    per_sender = 40
    text_bytes = 4000

    def run(self, port, duration):
        rounds = []
        started = now()
        end = started + duration
        for r in range(50):  # bounded: one round every 2 s
            round_start = started + 2.0 * r
            if round_start >= end and r > 0:
                break
            while now() < round_start:
                time.sleep(min(0.05, round_start - now()))
            rounds.append(self.round(port, r, deadline=max(end, now() + 2.0)))
        while now() < end:  # a fixed window, so CPU % compares across builds
            time.sleep(min(0.05, end - now()))
        total = collections.Counter()
        told = collections.Counter()
        victim_errors = collections.Counter()
        for x in rounds:
            total["sent"] += x["sent"]
            total["delivered"] += x["delivered"]
            total["victim_dropped"] += x["victim_dropped"]
            told.update(x["told"])
            victim_errors.update(x["victim_errors"])
        total["told"] = sum(told.values())
        return {"rounds": len(rounds), "victims_dropped": total["victim_dropped"],
                "sent": total["sent"], "delivered": total["delivered"], "told": total["told"],
                "told_by_code": dict(told), "gap": total["sent"] - total["delivered"] - total["told"],
                "victim_errors": dict(victim_errors), "per_round": rounds}

    def round(self, port, r, deadline):
        codes = collections.Counter()
        victim_name = f"victim{r}"
        login_deadline = now() + 5
        victim = login_retry(port, victim_name, VICTIM_SRC, login_deadline, codes)
        senders = [login_retry(port, f"pm{r}s{i}", ATTACKER, login_deadline, codes) for i in range(self.senders)]
        result = {"round": r, "sent": 0, "delivered": 0, "victim_dropped": False, "told": {},
                  "victim_errors": {}, "login_refusals": dict(codes)}
        if victim is None or None in senders:
            for got in [victim, *senders]:
                if got:
                    got[0].close()
            result["error"] = "login failed"
            return result
        expected = self.senders * self.per_sender
        lines = []
        for i in range(self.senders):
            prefix = f"/msg {victim_name} ".encode()
            body = b"".join(prefix + f"s{i} m{j} ".encode().ljust(self.text_bytes, b"x") + b"\n"
                            for j in range(self.per_sender))
            lines.append(body)
        line_len = len(lines[0]) // self.per_sender
        barrier = threading.Barrier(self.senders + 1)
        told = collections.Counter()
        sent_lines = [0] * self.senders
        lock = threading.Lock()
        victim_state = {"delivered": 0, "dropped": False, "errors": collections.Counter()}

        def victim_reader():
            sock, rest = victim
            chunks = LineChunks(rest)
            sock.settimeout(0.2)
            while now() < deadline and victim_state["delivered"] < expected:
                try:
                    data = sock.recv(1 << 20)
                except socket.timeout:
                    continue
                except OSError:
                    data = b""
                if not data:
                    victim_state["dropped"] = True
                    break
                block = chunks.feed(data)
                if block:
                    victim_state["delivered"] += block.count(b"\nPRIV ")
                    for rest_ in find_lines(block, b"ERR "):
                        code = rest_.split(b" ", 1)[0].decode(errors="replace")
                        victim_state["errors"][code] += 1
                        if code in DROP_CODES:
                            victim_state["dropped"] = True

        def sender(i):
            sock, rest = senders[i]
            payload = memoryview(lines[i])
            barrier.wait(5)
            sent = 0
            sock.settimeout(0.2)
            while sent < len(payload) and now() < deadline:
                try:
                    sent += sock.send(payload[sent:])
                except socket.timeout:
                    continue
                except OSError:
                    break
            sent_lines[i] = sent // line_len
            try:
                sock.shutdown(socket.SHUT_WR)  # the server answers every line it got, then closes: all ERRs arrive
            except OSError:
                pass
            chunks = LineChunks(rest)
            while now() < deadline:
                try:
                    data = sock.recv(1 << 16)
                except socket.timeout:
                    continue
                except OSError:
                    break
                if not data:
                    break
                block = chunks.feed(data)
                if block:
                    for rest_ in find_lines(block, b"ERR "):
                        with lock:
                            told[rest_.split(b" ", 1)[0].decode(errors="replace")] += 1

        threads = [threading.Thread(target=victim_reader, daemon=True)]
        threads += [threading.Thread(target=sender, args=(i,), daemon=True) for i in range(self.senders)]
        for t in threads:
            t.start()
        try:
            barrier.wait(5)
        except threading.BrokenBarrierError:
            pass
        for t in threads:
            t.join(max(0.1, deadline - now() + 1))
        for got in [victim, *senders]:
            got[0].close()
        result.update(sent=sum(sent_lines), delivered=victim_state["delivered"], victim_dropped=victim_state["dropped"],
                      told=dict(told), victim_errors=dict(victim_state["errors"]))
        return result

    def summary(self, r):
        told = ", ".join(f"{k} {v}" for k, v in r["told_by_code"].items()) or "none"
        return (f"victim dropped in {r['victims_dropped']}/{r['rounds']} rounds; delivered {r['delivered']}/{r['sent']}; "
                f"senders told {r['told']} ({told}); unaccounted {r['gap']}")


class RoomsPipeline(Scenario):
    name = "rooms-pipeline"
    flags = ["--max-rooms", "2000"]
    pipelined = 20

    def __init__(self):
        self.holders = RoomHolders()

    def setup(self, port):
        return self.holders.setup(port)

    def run(self, port, duration):
        rounds = []
        started = now()
        end = started + duration
        codes = collections.Counter()
        for r in range(50):
            round_start = started + 1.0 * r
            if round_start >= end and r > 0:
                break
            while now() < round_start:
                time.sleep(min(0.05, round_start - now()))
            got = login_retry(port, f"rp{r}", ATTACKER, now() + 3, codes)
            if got is None:
                rounds.append({"round": r, "error": "login failed"})
                continue
            sock, rest = got
            chunks = LineChunks(rest)
            errors = collections.Counter()
            replies = 0
            reply_bytes = 0
            dropped = False
            deadline = now() + 5
            sock.sendall(b"/rooms\n" * self.pipelined)
            sock.settimeout(0.2)
            while replies < self.pipelined and now() < deadline:
                try:
                    data = sock.recv(1 << 20)
                except socket.timeout:
                    continue
                except OSError:
                    data = b""
                if not data:
                    dropped = True
                    break
                block = chunks.feed(data)
                if block:
                    for rest_ in find_lines(block, b"SYS Rooms ("):
                        replies += 1
                        reply_bytes += len(rest_) + 12
                    for rest_ in find_lines(block, b"ERR "):
                        errors[rest_.split(b" ", 1)[0].decode(errors="replace")] += 1
            sock.close()
            dropped = dropped or bool(DROP_CODES & set(errors))
            rounds.append({"round": r, "replies": replies, "dropped": dropped, "errors": dict(errors),
                           "reply_bytes": reply_bytes // replies if replies else 0})
        while now() < end:
            time.sleep(min(0.05, end - now()))
        errors = collections.Counter()
        for x in rounds:
            errors.update(x.get("errors", {}))
        return {"rounds": len(rounds), "dropped": sum(1 for x in rounds if x.get("dropped")),
                "replies": sum(x.get("replies", 0) for x in rounds), "requested": self.pipelined * len(rounds),
                "errors": dict(errors), "reply_bytes": max((x.get("reply_bytes", 0) for x in rounds), default=0),
                "login_refusals": dict(codes), "per_round": rounds}

    def teardown(self):
        self.holders.teardown()

    def summary(self, r):
        errs = ", ".join(f"{k} {v}" for k, v in r["errors"].items()) or "none"
        return (f"dropped in {r['dropped']}/{r['rounds']} rounds; replies {r['replies']}/{r['requested']} "
                f"({r['reply_bytes']} B each); ERR: {errs}")


class ReconnectFlood(Scenario):
    name = "reconnect-flood"
    threads = 16
    lines_per_connection = 40

    def run(self, port, duration):
        end = now() + duration
        stats = [collections.Counter() for _ in range(self.threads)]

        def worker(t):
            # As the attacker did: connect, write the name and 40 lines, close; no waiting for the
            # Welcome (that alone would pace each thread to one connection per flush interval). Whatever
            # the server already sent is read just before the close, to count refusals.
            st = stats[t]
            for k in range(10_000_000):  # bounded; the deadline ends it first
                if now() >= end:
                    break
                name = f"rf{t}n{k}"
                payload = (name + "\n" + "".join(f"flood {t} {k} {j}\n" for j in range(self.lines_per_connection))).encode()
                try:
                    s = connect(port, ATTACKER, 2.0)
                except OSError as error:
                    st["connect:" + errno_name(error)] += 1
                    time.sleep(0.001)
                    continue
                try:
                    s.sendall(payload)
                    st["connections"] += 1
                    st["lines_sent"] += self.lines_per_connection
                    if k % SAMPLE_EVERY == 0:
                        # One connection in SAMPLE_EVERY waits (up to 1 s) for the server's verdict, so that
                        # a throttle's refusals are counted by code; the rest do not wait for anything.
                        st["sampled:" + self.verdict(s)] += 1
                    else:
                        try:
                            seen = s.recv(65536, socket.MSG_DONTWAIT)
                        except BlockingIOError:
                            seen = b""
                        m = ERR_CODE.search(seen)
                        if m and (seen.startswith(b"ERR ") or b"\nERR " in seen):
                            st["told:" + m.group(1).decode()] += 1
                except OSError as error:
                    st["error:" + errno_name(error)] += 1
                finally:
                    s.close()

        workers = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(self.threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(max(0.1, end - now() + 5))
        total = collections.Counter()
        for st in stats:
            total.update(st)
        return {"connections": total["connections"], "lines_sent": total["lines_sent"], "sample_every": SAMPLE_EVERY,
                "other_outcomes": {k: v for k, v in total.items() if k not in ("connections", "lines_sent")}}

    @staticmethod
    def verdict(s):
        """What the server answered a connection: `welcomed`, the ERR code of a refusal, `closed` or `timeout`."""
        buf = b""
        deadline = now() + 1.0
        try:
            while now() < deadline:
                s.settimeout(max(0.01, deadline - now()))
                data = s.recv(65536)
                if not data:
                    return "closed"
                buf += data
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if line.startswith(b"SYS Welcome"):
                        return "welcomed"
                    if line.startswith(b"ERR "):
                        return ERR_CODE.match(line).group(1).decode()
        except OSError as error:
            return errno_name(error)
        return "timeout"

    def summary(self, r):
        w = r["window_s"]
        p = r["probe"]
        lm = p.get("lobby_member", {})
        # The lobby member's window is the probe's (a little longer than the attack); rates use its own.
        pw = p.get("window_s") or w
        other = ", ".join(f"{k} {v:,}" for k, v in r["other_outcomes"].items()) or "none"
        return (f"{r['connections']:,} connections ({r['connections'] / w:,.0f}/s), {r['lines_sent']:,} lines sent; "
                f"lobby member got MSG {lm.get('msg_other', 0) / pw:,.0f}/s, "
                f"Online {lm.get('sys_online', 0) / pw:,.0f}/s, Offline {lm.get('sys_offline', 0) / pw:,.0f}/s, "
                f"missed {p.get('lobby_member_missed', 0):,}; refused/other: {other}")


class Flood(Scenario):
    """Named writers that never read, each writing `chunk` in a loop."""
    writers = 1
    chunk = b""
    prefix = ""

    def setup(self, port):
        codes = collections.Counter()
        got = login_many(port, [(f"{self.prefix}{i}", ATTACKER, b"") for i in range(self.writers)], now() + 20, codes)
        self.socks = [sock for sock, _ in got.values()]
        return {"writers": len(self.socks), "login_refusals": dict(codes)}

    def run(self, port, duration):
        started = now()
        end = started + duration
        written = [0] * len(self.socks)
        failed = collections.Counter()
        payload = memoryview(self.chunk)

        def writer(i):
            s = self.socks[i]
            s.settimeout(0.2)
            for _ in range(100_000_000):  # bounded; the deadline ends it first
                if now() >= end:
                    return
                try:
                    written[i] += s.send(payload)
                except socket.timeout:
                    continue
                except OSError as error:
                    failed[errno_name(error)] += 1
                    return

        threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(len(self.socks))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.1, end - now() + 5))
        stopped = now()
        pairs = [(s.getsockname()[1], port) for s in self.socks]
        queued = tcp_queues(pairs)
        measured = now()
        total = sum(written)
        read = max(0, total - queued)
        errors = collections.Counter()
        closed = 0
        for s in self.socks:
            codes, was_closed = drain_errors(s)
            errors.update(codes)
            closed += was_closed
        return {"written_mib_s": round(total / (stopped - started) / (1 << 20), 2),
                "server_read_mib_s": round(read / (measured - started) / (1 << 20), 2),
                "written_bytes": total, "still_queued_bytes": queued, "writer_send_errors": dict(failed),
                "writers_closed_by_server": closed, "errors_to_writers": dict(errors)}

    def teardown(self):
        for s in getattr(self, "socks", []):
            s.close()

    def summary(self, r):
        errs = ", ".join(f"{k} {v}" for k, v in r["errors_to_writers"].items()) or "none"
        return (f"server read {r['server_read_mib_s']} MiB/s (written {r['written_mib_s']} MiB/s); "
                f"writers closed {r['writers_closed_by_server']}/{r['setup']['writers']}; ERR to writers: {errs}")


class EmptyLineFlood(Flood):
    name = "empty-line-flood"
    writers = 16
    chunk = b"\n" * 65536
    prefix = "el"


class OverlongFlood(Flood):
    name = "overlong-flood"
    writers = 1
    chunk = b"x" * 65536
    prefix = "ol"


class RoomsCpu(Scenario):
    name = "rooms-cpu"
    flags = ["--max-rooms", "2000"]
    clients = 200
    rate = 20

    def __init__(self):
        self.holders = RoomHolders()
        self.socks = []

    def setup(self, port):
        result = self.holders.setup(port)
        codes = collections.Counter()
        got = login_many(port, [(f"rq{i}", ATTACKER, b"") for i in range(self.clients)], now() + 30, codes)
        self.socks = list(got.values())
        result.update(requesters=len(self.socks), requester_refusals=dict(codes))
        return result

    def run(self, port, duration):
        started = now()
        end = started + duration
        n = len(self.socks)
        socks = [s for s, _ in self.socks]
        chunks = {s.fileno(): LineChunks(rest) for s, rest in self.socks}
        for s in socks:
            s.setblocking(False)
        st = collections.Counter()
        errors = collections.Counter()
        open_ = set(s.fileno() for s in socks)
        closed = set()     # clients whose connection the server closed (EOF or reset seen)
        told_drop = set()  # clients that got an ERR line that always precedes a close
        lock = threading.Lock()

        def sender():
            # 20 slots per 1/rate s; each client is sent one `/rooms` per period, spread over the slots.
            period = 1.0 / self.rate
            slots = 10
            tick = started
            for _ in range(int(duration * self.rate * slots) + slots):
                if now() >= end:
                    return
                for slot in range(slots):
                    for i in range(slot, n, slots):
                        if socks[i].fileno() not in open_:
                            continue
                        try:
                            socks[i].send(b"/rooms\n", socket.MSG_DONTWAIT)
                            st["requests_sent"] += 1
                        except BlockingIOError:
                            st["requests_blocked"] += 1
                        except OSError:
                            st["requests_failed"] += 1
                    tick += period / slots
                    pause = tick - now()
                    if pause > 0:
                        time.sleep(pause)
                    elif pause < -period:
                        tick = now()  # fell behind by a whole period: skip, do not burst

        def reader():
            sel = selectors.DefaultSelector()
            for s in socks:
                sel.register(s, selectors.EVENT_READ)
            while now() < end + 0.5 and open_:
                for key, _ in sel.select(0.1):
                    s = key.fileobj
                    try:
                        data = s.recv(1 << 20)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        sel.unregister(s)
                        with lock:
                            open_.discard(s.fileno())
                        closed.add(s.fileno())
                        continue
                    st["bytes"] += len(data)
                    block = chunks[s.fileno()].feed(data)
                    if block:
                        st["replies"] += block.count(b"\nSYS Rooms (")
                        for rest in find_lines(block, b"ERR "):
                            code = rest.split(b" ", 1)[0].decode(errors="replace")
                            errors[code] += 1
                            if code in DROP_CODES:
                                told_drop.add(s.fileno())

        threads = [threading.Thread(target=sender, daemon=True), threading.Thread(target=reader, daemon=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.1, end - now() + 5))
        window = end - started
        # Late news: replies and closes still queued for us (the server may run seconds behind).
        for s in socks:
            if s.fileno() in open_:
                codes, was_closed = drain_errors(s)
                errors.update(codes)
                if was_closed:
                    closed.add(s.fileno())
                if DROP_CODES & set(codes):
                    told_drop.add(s.fileno())
        return {"requesters": n, "requests_sent": st["requests_sent"], "requests_blocked": st["requests_blocked"],
                "requests_failed": st["requests_failed"],
                "replies": st["replies"], "replies_per_s": round(st["replies"] / window),
                "reply_mib_s": round(st["bytes"] / window / (1 << 20), 2),
                "requesters_dropped": len(closed | told_drop), "requesters_closed_seen": len(closed),
                "errors": dict(errors)}

    def teardown(self):
        for s, _ in self.socks:
            s.close()
        self.holders.teardown()

    def summary(self, r):
        errs = ", ".join(f"{k} {v}" for k, v in r["errors"].items()) or "none"
        return (f"{r['replies_per_s']:,} replies/s for {r['requests_sent'] / r['window_s']:,.0f} requests/s sent "
                f"({r['requests_blocked']:,} sends blocked); requesters dropped {r['requesters_dropped']}/{r['requesters']}; "
                f"ERR: {errs}")


SCENARIOS = {cls.name: cls for cls in [PrivmsgFlood, RoomsPipeline, ReconnectFlood, EmptyLineFlood, OverlongFlood, RoomsCpu]}


# ------------------------------------------------------------------------------------------------ main

def run_scenario(binary, cls, duration, workdir, extra_flags=()):
    scenario = cls()
    scenario.flags = [*scenario.flags, *extra_flags]
    server = Chatd(binary, scenario.flags, workdir, scenario.name)
    probe = None
    result = {"scenario": scenario.name, "flags": ["--listen", f"{HOST}:0", *scenario.flags]}
    try:
        server.start()
        result["setup"] = scenario.setup(server.port)
        probe = Probe(server.port, scenario.watch)
        load_before = os.getloadavg()
        cpu0, sw0, t0 = server.cpu_seconds(), server.voluntary_switches(), now()
        result.update(scenario.run(server.port, duration))
        cpu1, sw1, t1 = server.cpu_seconds(), server.voluntary_switches(), now()
        result["window_s"] = round(t1 - t0, 3)
        if cpu0 is not None and cpu1 is not None:
            result["server_cpu_pct"] = round(100 * (cpu1 - cpu0) / (t1 - t0), 1)
        if sw0 is not None and sw1 is not None:
            result["server_sleeps_per_s"] = round((sw1 - sw0) / (t1 - t0))
        result["loadavg_1m"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
        result["probe"] = probe.stop()
        probe = None
        result["server_peak_rss_mib"] = server.peak_rss_mib()
        result["summary"] = scenario.summary(result)
    except Exception as error:  # a tool failure ends this scenario only; the others still run
        result["error"] = f"{type(error).__name__}: {error}"
        result["traceback"] = traceback.format_exc()
    finally:
        if probe:
            probe.kill()
        try:
            scenario.teardown()
        finally:
            status = server.exit_status()
            if status is not None:
                result["server_died"] = status
                result["server_log_tail"] = server.log_tail()
            server.stop()
    return result


def fmt(value, pattern="{:.1f}"):
    return "-" if value is None else pattern.format(value)


def print_table(results):
    print()
    print(f"{'scenario':<17} {'srv CPU %':>9} {'sleeps/s':>8} {'probe p50 ms':>12} {'p99 ms':>8} {'probes lost':>11} "
          f"{'load 1m':>11}  result")
    for r in results:
        p = r.get("probe") or {}
        lat = p.get("latency_ms") or {}
        lost = f"{p['probes_lost']}/{p['probes_sent']}" if "probes_sent" in p else "-"
        load = "-" if "loadavg_1m" not in r else f"{r['loadavg_1m'][0]:.1f}->{r['loadavg_1m'][1]:.1f}"
        text = r.get("summary") or r.get("error", "")
        if "server_died" in r:
            text = f"SERVER DIED (status {r['server_died']}); " + text
        late = f">{p.get('drain_s', DRAIN_S) * 1000:.0f}" if p.get("probes_lost") else "-"
        median = late if lat.get("median") is None else f"{lat['median']:.2f}"
        p99 = late if lat.get("p99") is None else f"{lat['p99']:.1f}"
        print(f"{r['scenario']:<17} {fmt(r.get('server_cpu_pct')):>9} {fmt(r.get('server_sleeps_per_s'), '{:,}'):>8} "
              f"{median:>12} {p99:>8} {lost:>11} {load:>11}  {text}")


def main():
    if "--probe-child" in sys.argv[1:]:
        return probe_child(sys.argv[1:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chatd", required=True, help="path to the chatd binary to start")
    ap.add_argument("--scenario", nargs="+", action="extend", choices=ORDER, metavar="NAME",
                    help="scenarios to run (default: all): " + ", ".join(ORDER))
    ap.add_argument("--duration", type=float, default=10.0, help="measured seconds per scenario (1-60, default 10)")
    ap.add_argument("--json", metavar="FILE", help="write every figure measured to FILE")
    ap.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                    help="an extra chatd argument for every scenario (repeat; e.g. --server-arg=--connect-rate "
                         "--server-arg=0 to see one fix without another)")
    args = ap.parse_args()
    # SIGTERM ends the run through the same `finally` blocks as Ctrl-C: every chatd started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not 1 <= args.duration <= 60:
        ap.error("--duration must be between 1 and 60 s")
    binary = os.path.abspath(args.chatd)
    if not os.access(binary, os.X_OK):
        ap.error(f"not an executable: {binary}")
    # ~1,250 sockets at once (1,000 room holders, 200 requesters, the probe): lift the soft descriptor limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    with open(binary, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    names = [n for n in ORDER if n in (args.scenario or ORDER)]
    report = {"tool": "Benchmarks/hostile.py", "chatd": binary, "server_args": args.server_arg, "chatd_sha256_16": digest,
              "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "duration_s": args.duration,
              "loadavg_start": [round(x, 2) for x in os.getloadavg()], "cores": os.cpu_count(), "scenarios": []}
    print(f"hostile.py: {binary} (sha256 {digest}…), {len(names)} scenario(s) x {args.duration:g} s, "
          f"load average {report['loadavg_start']}", flush=True)
    started = now()
    failed = False
    with tempfile.TemporaryDirectory(prefix="hostile-") as workdir:
        for name in names:
            print(f"  {name} ...", end="", flush=True)
            result = run_scenario(binary, SCENARIOS[name], args.duration, workdir, args.server_arg)
            report["scenarios"].append(result)
            failed |= "error" in result
            print(" " + (result.get("summary") or result.get("error", "")), flush=True)
    report["elapsed_s"] = round(now() - started, 1)
    report["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print_table(report["scenarios"])
    print(f"\nelapsed {report['elapsed_s']} s; load average at the end {report['loadavg_end']} on {report['cores']} cores")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, ensure_ascii=False)
            f.write("\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
