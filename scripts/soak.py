#!/usr/bin/env python3
"""Churn soak for chatd: clients connect and leave at random, random senders talk, some clients stop
reading for a while. Bounded in time and count; loopback only; stops by itself.

At the end it checks, for every receiver:
  * each sender's messages arrived in order, never twice, never its own;
  * every gap in a sender's sequence is accounted for by `SYS Missed: N` notices received before it
    (cumulative gaps <= cumulative N at every point of the stream); a receiver that was never told it
    missed anything has no gap at all;
  * exactly: a witness client sits in the room the whole time and reads everything; every line of the
    room is unique, so each receiver's lines map into the witness's stream, and between two consecutive
    lines a receiver got, the room lines it did not get (its own messages aside) must number exactly
    the N of the `SYS Missed` notices it received in between;
and for the server: RSS after warm-up stays within the stated bound, and its fd count returns to the
baseline once every client is gone.

Usage: scripts/soak.py --chatd PATH [--duration 60] [--clients 1000] [--rate 20]
"""
import argparse
import os
import random
import re
import selectors
import signal
import socket
import subprocess
import sys
import time

MSG = re.compile(rb"^MSG #soak c(\d+): m (\d+) (\d+)(?: x+)?$")
PAD = "x" * 400
MISSED = re.compile(rb"^SYS Missed: (\d+) lines? in #soak")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Client:
    __slots__ = ("cid", "sock", "buf", "state", "last", "gaps", "credit", "missed_notices", "violations",
                 "paused_until", "seq", "leave_at", "received", "small", "events", "senders")

    def __init__(self, cid, sock, small):
        self.cid = cid
        self.sock = sock
        self.buf = b""
        self.state = "naming"
        self.last = {}          # sender id -> last seq seen
        self.gaps = 0           # messages found missing so far
        self.credit = 0         # lines the server said were missed so far
        self.missed_notices = 0
        self.violations = []
        self.paused_until = 0.0
        self.seq = 0
        self.leave_at = 0.0
        self.received = 0
        self.small = small
        self.events = []        # hash of each room line received, or -N for a `SYS Missed: N` notice
        self.senders = None     # the witness only: sender id of each room line (-1 for system lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chatd", required=True, help="path to the chatd binary")
    ap.add_argument("--duration", type=float, default=60, help="seconds of churn (default 60)")
    ap.add_argument("--clients", type=int, default=1000, help="clients online at once (default 1000)")
    ap.add_argument("--rate", type=float, default=20, help="messages per second, all senders together")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-rss-bound", action="store_true",
                    help="report RSS but do not enforce the bound (sanitizer builds keep freed memory in quarantine)")
    args = ap.parse_args()
    random.seed(args.seed)

    # A small ring and small receive buffers on the pausing clients make slow consumers happen quickly.
    server = subprocess.Popen(
        [args.chatd, "--listen", "127.0.0.1:0", "--max-clients", str(args.clients * 2 + 100),
         "--max-clients-per-address", "0", "--connect-rate", "0", "--message-rate", "0", "--ring-bytes", "32768",
         "--write-timeout", "20", "--send-buffer-bytes", "16384", "--log-level", "warning"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    port = None
    try:
        deadline = time.time() + 20
        while port is None and time.time() < deadline:
            port = find_port(server.pid)
            if port is None:
                time.sleep(0.05)
        if port is None:
            print("soak: chatd did not listen")
            return 2
        return run(args, server, port)
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def find_port(pid):
    """The TCP port the process listens on, from /proc/net/tcp and its socket inodes."""
    try:
        inodes = set()
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
                if parts[3] == "0A" and parts[9] in inodes:  # LISTEN
                    return int(parts[1].split(":")[1], 16)
    except OSError:
        return None
    return None


def run(args, server, port):
    sel = selectors.DefaultSelector()
    clients = {}
    retired = []
    next_id = 0
    sent = 0
    start = time.time()
    end = start + args.duration
    warm_rss = None
    warm_at = start + min(10.0, args.duration / 3)
    peak_rss = 0
    baseline_fds = fd_count(server.pid)
    next_send = start
    connects = quits = aborts = 0

    def connect():
        nonlocal next_id, connects
        cid = next_id
        next_id += 1
        small = random.random() < 0.2
        s = socket.socket()
        if small:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        s.setblocking(False)
        c = Client(cid, s, small)
        c.leave_at = time.time() + random.uniform(2, max(3, args.duration / 2))
        s.send(f"c{cid}\n".encode())
        clients[cid] = c
        sel.register(s, selectors.EVENT_READ, c)
        connects += 1

    def retire(c, polite):
        nonlocal quits, aborts
        if polite:
            try:
                c.sock.send(b"/quit soak\n")
            except OSError:
                pass
            quits += 1
        else:
            aborts += 1
        sel.unregister(c.sock)
        c.sock.close()
        del clients[c.cid]
        retired.append(c)

    def absorb(c, data):
        c.buf += data
        *lines, c.buf = c.buf.split(b"\n")
        for line in lines:
            if c.state == "naming":
                if line.startswith(b"SYS Welcome"):
                    c.sock.send(b"/join soak\n")
                    c.state = "joining"
                continue
            if c.state == "joining" and line.startswith(b"SYS Room: #soak"):
                c.state = "in"
                continue
            m = MSG.match(line)
            if line.startswith(b"MSG #soak ") or line.startswith(b"SYS #soak "):
                c.events.append(hash(line) & 0x7FFFFFFFFFFFFFFF)  # >= 0; notices are < 0
                if c.senders is not None:
                    c.senders.append(int(m.group(1)) if m else -1)
            if m:
                sender, seq = int(m.group(2)), int(m.group(3))
                c.received += 1
                if sender == c.cid:
                    c.violations.append(f"own message echoed: {line[:60]!r}")
                last = c.last.get(sender)
                if last is not None:
                    if seq <= last:
                        c.violations.append(f"order/duplicate from c{sender}: {seq} after {last}")
                    else:
                        c.gaps += seq - last - 1
                        if c.gaps > c.credit:
                            c.violations.append(
                                f"silent loss: {c.gaps} messages missing, only {c.credit} announced (c{sender} {last}->{seq})")
                c.last[sender] = seq
                continue
            m = MISSED.match(line)
            if m:
                c.events.append(-int(m.group(1)))
                c.credit += int(m.group(1))
                c.missed_notices += 1
            elif line.startswith(b"ERR") and not line.startswith(b"ERR write-timeout"):
                c.violations.append(f"unexpected error: {line[:80]!r}")

    # The witness joins first and reads everything, never pausing and never leaving.
    connect()
    witness = clients[next_id - 1]
    witness.leave_at = float("inf")
    witness.small = False
    witness.senders = []
    witness_deadline = time.time() + 10
    while witness.state != "in" and time.time() < witness_deadline:
        for key, _ in sel.select(timeout=0.05):
            data = key.data.sock.recv(65536)
            if data:
                absorb(key.data, data)
    if witness.state != "in":
        print("soak: the witness could not join")
        return 2

    last_progress = start
    while True:
        now = time.time()
        if now >= end:
            break
        # Keep the population up, pacing connects.
        for _ in range(min(50, args.clients - len(clients))):
            connect()
        # Churn: clients whose time is up leave, politely or not.
        for c in list(clients.values()):
            if now >= c.leave_at:
                retire(c, polite=random.random() < 0.7)
        # Pauses: clients with small receive buffers stop reading for 3-8 s now and then; with a 32 KiB
        # ring that is long enough for the server to overwrite what they have not read.
        if random.random() < 0.05 and clients:
            c = random.choice(list(clients.values()))
            if c.small:
                c.paused_until = now + random.uniform(4, 10)
        # Send at the target rate from random members of #soak.
        while next_send <= now:
            members = [c for c in clients.values() if c.state == "in" and c is not witness]
            if members:
                c = random.choice(members)
                c.seq += 1
                try:
                    c.sock.send(f"m {c.cid} {c.seq} {PAD[:random.randrange(1, len(PAD))]}\n".encode())
                    sent += 1
                except OSError:
                    pass
            next_send += 1.0 / args.rate
        for key, _ in sel.select(timeout=0.02):
            c = key.data
            if c.paused_until > now:
                continue
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(c.sock)
                c.sock.close()
                del clients[c.cid]
                retired.append(c)
                continue
            absorb(c, data)
        if warm_rss is None and now >= warm_at:
            warm_rss = rss_kib(server.pid)
        peak_rss = max(peak_rss, rss_kib(server.pid))
        if now - last_progress >= 5:
            last_progress = now
            print(f"soak: {now - start:5.1f}s online={len(clients)} connects={connects} sent={sent} "
                  f"rss={rss_kib(server.pid)} KiB", file=sys.stderr)

    # Drain: everyone reads what is left for a moment, then leaves.
    drain_end = time.time() + 3
    while time.time() < drain_end:
        for key, _ in sel.select(timeout=0.05):
            c = key.data
            try:
                data = c.sock.recv(65536)
            except (BlockingIOError, OSError):
                continue
            if data:
                absorb(c, data)
    end_rss = rss_kib(server.pid)
    for c in list(clients.values()):
        retire(c, polite=False)

    # The server's fds return to the baseline once everyone is gone.
    fd_deadline = time.time() + 15
    fds = fd_count(server.pid)
    while fds > baseline_fds and time.time() < fd_deadline:
        time.sleep(0.1)
        fds = fd_count(server.pid)

    everyone = retired
    # Exact accounting against the witness's stream.
    exact_checked = exact_missed = 0
    if witness.credit:
        violations_exact = [("witness", f"the witness itself missed {witness.credit} lines; no exact check possible")]
    else:
        violations_exact = []
        position = {h: index for index, h in enumerate(witness.events)}
        witness_senders = witness.senders
        for c in everyone:
            if c is witness or not c.events:
                continue
            previous = None
            announced = 0
            for h in c.events:
                if h < 0:
                    announced += -h
                    continue
                index = position.get(h)
                if index is None:
                    violations_exact.append((c.cid, "received a room line the witness never saw"))
                    break
                if previous is not None:
                    if index <= previous:
                        violations_exact.append((c.cid, "room lines out of order against the witness"))
                        break
                    skipped = sum(1 for k in range(previous + 1, index) if witness_senders[k] != c.cid)
                    if skipped != announced:
                        violations_exact.append(
                            (c.cid, f"{skipped} room lines not received but {announced} announced missed"))
                        break
                    exact_missed += skipped
                previous = index
                announced = 0
            exact_checked += 1
    violations_all = [(c.cid, v) for c in everyone for v in c.violations] + violations_exact
    violations = violations_all
    deliveries = sum(c.received for c in everyone)
    gaps = sum(c.gaps for c in everyone)
    credit = sum(c.credit for c in everyone)
    notices = sum(c.missed_notices for c in everyone)
    warm = warm_rss or end_rss
    rss_bound = max(int(warm * 1.5), warm + 16 * 1024)
    print(f"soak: clients={connects} (quit {quits}, dropped {aborts}) messages sent={sent} deliveries={deliveries}")
    print(f"soak: missed notices={notices} lines announced missed={credit} messages found missing={gaps} "
          f"unaccounted={max(0, gaps - credit)}")
    print(f"soak: exact accounting against the witness: {exact_checked} receivers checked, "
          f"{exact_missed} room lines missed, all announced" if not violations_exact else
          f"soak: exact accounting FAILED: {violations_exact[:3]}")
    print(f"soak: server RSS warm={warm} KiB end={end_rss} KiB peak={peak_rss} KiB bound={rss_bound} KiB; "
          f"fds baseline={baseline_fds} end={fds}")
    ok = True
    if violations:
        ok = False
        print(f"soak: FAIL {len(violations)} violations, first: {violations[:5]}")
    if end_rss > rss_bound and not args.no_rss_bound:
        ok = False
        print("soak: FAIL server RSS grew past the bound")
    if fds > baseline_fds:
        ok = False
        print("soak: FAIL server fds did not return to the baseline")
    if server.poll() is not None:
        ok = False
        print("soak: FAIL chatd exited during the soak")
    if sent == 0 or deliveries == 0:
        ok = False
        print("soak: FAIL nothing was exchanged")
    print("soak: PASS" if ok else "soak: FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
