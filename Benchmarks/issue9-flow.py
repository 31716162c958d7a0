#!/usr/bin/env python3
"""Issue 9, findings 3 and 7, measured against a chatd binary (release build, defaults unless said).

  Benchmarks/issue9-flow.py PATH/TO/chatd [empty-flood|overlong|privflood|all] [--seconds N] [--flooders N]

empty-flood: N clients (16) send "\\n" x 64 KiB without end and never read; two others ping each other 20
             times a second through the lobby. Reports chatd's CPU, the bytes the flooders got the kernel to
             take, and the others' one-way latency (median, p99).
overlong:    one client sends an endless line of "x" and never reads; reports CPU and bytes.
privflood:   four users each send 40 x "/msg victim <4000 bytes>" within their burst; the victim reads as
             fast as it can (before: dropped with queue-overflow). Reports whether the victim was dropped, and delivered / refused counts.
Loopback only; chatd is started on a free port and stopped by its PID.
"""
import os, socket, statistics, subprocess, sys, threading, time

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def bytes_read(pid):
    with open(f"/proc/{pid}/io") as f:
        return int(next(l for l in f if l.startswith("rchar:")).split()[1])

def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

class Daemon:
    def __init__(self, binary, flags=()):
        self.port = free_port()
        self.proc = subprocess.Popen([binary, "--listen", f"127.0.0.1:{self.port}", "--max-clients-per-address", "0",
                                      "--log-level", "error", *flags], stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port)).close(); return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("chatd did not start")
    def stop(self):
        self.proc.terminate()
        try: self.proc.wait(10)
        except subprocess.TimeoutExpired: self.proc.kill()

def connect(port, name):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(name.encode() + b"\n")
    buf = b""
    while b"SYS Welcome" not in buf:
        chunk = s.recv(65536)
        if not chunk: raise RuntimeError(f"{name}: closed before the welcome")
        buf += chunk
    return s

def lines_of(sock, stop, out, timeout=0.2):
    sock.settimeout(timeout)
    buf = b""
    while not stop.is_set():
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if not chunk: break
        buf += chunk
        *done, buf = buf.split(b"\n")
        for line in done: out(line)

def flood(daemon, flooders, seconds, payload):
    stop = threading.Event()
    sent = [0] * flooders
    socks = [connect(daemon.port, f"flood{i}") for i in range(flooders)]
    a, b = connect(daemon.port, "pinga"), connect(daemon.port, "pingb")
    latencies = []
    def on_b(line):
        if line.startswith(b"MSG #lobby pinga: ping "):
            latencies.append(time.monotonic() - float(line.split()[-1]))
    reader = threading.Thread(target=lines_of, args=(b, stop, on_b), daemon=True); reader.start()
    drain_a = threading.Thread(target=lines_of, args=(a, stop, lambda l: None), daemon=True); drain_a.start()
    def run(i):
        s = socks[i]
        while not stop.is_set():
            try:
                sent[i] += s.send(payload)
            except OSError:
                return
    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(flooders)]
    for t in threads: t.start()
    time.sleep(1)  # past the burst
    c0, t0, s0, r0 = cpu_seconds(daemon.proc.pid), time.monotonic(), sum(sent), bytes_read(daemon.proc.pid)
    latencies.clear()
    n = 0
    while time.monotonic() - t0 < seconds:
        a.sendall(f"ping {n} {time.monotonic():.6f}\n".encode()); n += 1
        time.sleep(0.05)
    c1, t1, s1, r1 = cpu_seconds(daemon.proc.pid), time.monotonic(), sum(sent), bytes_read(daemon.proc.pid)
    stop.set()
    for s in socks + [a, b]:
        try: s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0"); s.close()
        except OSError: pass
    lat = sorted(latencies)
    result = {"cpu%": round(100 * (c1 - c0) / (t1 - t0), 1),
              "MB/s read by chatd": round((r1 - r0) / (t1 - t0) / 1e6, 2),
              "flood MB/s taken by the kernel": round((s1 - s0) / (t1 - t0) / 1e6, 2),
              "pings sent": n, "pings received": len(lat)}
    if lat:
        result["latency median ms"] = round(1000 * statistics.median(lat), 2)
        result["latency p99 ms"] = round(1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2)
    return result

def privflood(daemon):
    victim = connect(daemon.port, "victim")
    senders = [connect(daemon.port, f"sender{i}") for i in range(4)]
    stop = threading.Event()
    got = {"priv": 0, "err": []}
    def on_victim(line):
        if line.startswith(b"PRIV "): got["priv"] += 1
        elif line.startswith(b"ERR"): got["err"].append(line.decode(errors="replace")[:90])
    reader = threading.Thread(target=lines_of, args=(victim, stop, on_victim), daemon=True); reader.start()
    text = "v" * 4000
    for i, s in enumerate(senders):
        s.sendall("".join(f"/msg victim {i}-{j} {text}\n" for j in range(40)).encode())
    refused, others = 0, []
    for s in senders:
        s.sendall(b"/who\n")  # the 41st line: its reply (SYS Who or ERR rate-limited) follows every /msg reply
        s.settimeout(10)
        buf = b""
        while b"SYS Who" not in buf and b"ERR rate-limited" not in buf:
            chunk = s.recv(65536)
            if not chunk: break
            buf += chunk
        for line in buf.split(b"\n"):
            if line.startswith(b"ERR target-busy"): refused += 1
            elif line.startswith(b"SYS #lobby Offline: victim"): others.append(line.decode()[:100])
    time.sleep(1)
    stop.set(); reader.join(2)
    return {"victim dropped": bool(got["err"]) or bool(others), "victim's last ERR": got["err"][-1:],
            "room told": others[:1], "delivered": got["priv"], "refused to sender": refused,
            "neither (lost silently or dropped)": 160 - got["priv"] - refused}

def main():
    binary = sys.argv[1]
    what = sys.argv[2] if len(sys.argv) > 2 and not sys.argv[2].startswith("--") else "all"
    seconds = float(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 10
    flooders = int(sys.argv[sys.argv.index("--flooders") + 1]) if "--flooders" in sys.argv else 16
    for name in (["empty-flood", "overlong", "privflood"] if what == "all" else [what]):
        daemon = Daemon(binary)
        try:
            if name == "empty-flood": r = flood(daemon, flooders, seconds, b"\n" * 65536)
            elif name == "overlong": r = flood(daemon, 1, seconds, b"x" * 65536)
            else: r = privflood(daemon)
        finally:
            daemon.stop()
        print(name, r, flush=True)

if __name__ == "__main__":
    main()
