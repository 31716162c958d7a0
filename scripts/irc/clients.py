#!/usr/bin/env python3
"""Real IRC clients in #lobby: irssi (in tmux) and weechat-headless, with a native chatd client.

    clients.py [--server chatd|inspircd] [--chatd BIN] [--native | --no-native] [--artifacts DIR]

Starts the server on loopback, then irssi as "ivy", weechat as "wendy" and (with --native, the default
for chatd) a native-protocol client as "nadia", and plays one conversation: each sees the others join,
messages go every way, /me (CTCP ACTION for IRC), ivy sets the topic, private messages go each way
between every pair, then everyone quits. Every expectation is checked on what the receiving side
shows: irssi's screen (tmux capture-pane after /window goto), weechat's log files (logger.file.path),
the native client's received lines. A check waits up to --step-timeout seconds for its text.

--server inspircd runs the IRC half against Debian's InspIRCd (apt-get install -y inspircd) to prove
the driving and the reading without chatd; the native side needs chatd.

The irssi screens, the weechat logs and the native transcript are written to --artifacts and printed.
Exit status 0 when every check passed, 1 otherwise. Everything runs under --timeout; what this starts
(server, weechat, a private tmux server) it stops by PID or by its private socket.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, List, Optional

REPO = Path(__file__).resolve().parents[2]
CHANNEL = "#lobby"
IRSSI_NICK, WEECHAT_NICK, NATIVE_NAME = "ivy", "wendy", "nadia"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port}")


def stop(proc: Optional[subprocess.Popen], name: str) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        print(f"== {name} ignored SIGTERM for 5 s; killing PID {proc.pid}")
        proc.kill()
        proc.wait(5)


class Server:
    """The server under test, on 127.0.0.1."""

    def __init__(self, kind: str, chatd: Path, work: Path):
        self.kind = kind
        self.chatd = chatd
        self.work = work
        self.irc_port = free_port()
        self.native_port: Optional[int] = None
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = work / f"{kind}.log"

    def start(self) -> None:
        log = self.log_path.open("wb")
        if self.kind == "chatd":
            self.native_port = free_port()
            command = [str(self.chatd), "--irc-listen", f"127.0.0.1:{self.irc_port}",
                       "--listen", f"127.0.0.1:{self.native_port}"]
        else:
            config = self.work / "inspircd.conf"
            config.write_text(INSPIRCD_CONFIG.format(port=self.irc_port, log=self.work / "inspircd-file.log"))
            command = ["inspircd", "--nofork", "--config", str(config)]
            if os.geteuid() == 0:
                command.append("--runasroot")  # InspIRCd refuses root otherwise, as in CI containers
        print("== starting " + " ".join(command))
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        wait_for_port(self.irc_port, self.proc, deadline)
        if self.native_port:
            wait_for_port(self.native_port, self.proc, deadline)

    def stop(self) -> None:
        stop(self.proc, self.kind)


# Only what these two clients use; no services, no TLS. The channel is created by its first joiner.
INSPIRCD_CONFIG = """
<bind address="127.0.0.1" port="{port}" type="clients">
<connect allow="*" resolvehostnames="no" timeout="20" localmax="100" globalmax="100">
<options casemapping="ascii">
<module name="cap">
<module name="ircv3">
<module name="ircv3_capnotify">
<module name="ircv3_servertime">
<module name="namesx">
<module name="uhnames">
<log method="file" type="*" level="default" target="{log}">
<server name="irc.test" description="client test server" id="000" network="test">
"""


class Irssi:
    """irssi in a detached tmux session on a private tmux server (tmux -L), read with capture-pane."""

    def __init__(self, work: Path, port: int):
        self.home = work / "irssi"
        self.port = port
        self.socket = f"chatd-irc-{os.getpid()}"
        self.started = False
        self.screens: dict = {}

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                              timeout=10, check=check)

    def start(self) -> None:
        self.home.mkdir()
        (self.home / "config").write_text(IRSSI_CONFIG.format(port=self.port, nick=IRSSI_NICK, channel=CHANNEL))
        # -x/-y fix the pane size so the screen holds the whole conversation; TERM=xterm because CI
        # has no terminal of its own.
        self.tmux("new-session", "-d", "-s", "irssi", "-x", "200", "-y", "50",
                  f"TERM=xterm exec irssi --home={self.home}")
        self.started = True
        print(f"== started irssi as {IRSSI_NICK} in tmux -L {self.socket}")

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "irssi", "-l", text)
        self.tmux("send-keys", "-t", "irssi", "Enter")

    def say(self, window: str, text: str) -> None:
        """Types TEXT into WINDOW: reading a query's screen leaves irssi in that window."""
        self.type(f"/window goto {window}")
        self.type(text)

    def screen(self, window: str) -> str:
        """What irssi shows in WINDOW (a channel or a query's nick)."""
        self.type(f"/window goto {window}")
        time.sleep(0.3)
        return self.tmux("capture-pane", "-p", "-t", "irssi").stdout

    def capture(self) -> None:
        """Keeps each window's screen as an artifact (before irssi quits and its screen is gone)."""
        for window in [CHANNEL, WEECHAT_NICK, NATIVE_NAME]:
            self.screens[window] = self.screen(window)

    def stop(self) -> None:
        if self.started:
            # Our own tmux server (private socket): this ends it and the irssi inside, nothing else.
            self.tmux("kill-server", check=False)
            self.started = False


IRSSI_CONFIG = """
servers = (
  {{ address = "127.0.0.1"; chatnet = "local"; port = "{port}"; use_tls = "no"; autoconnect = "yes"; }}
);
chatnets = {{ local = {{ type = "IRC"; nick = "{nick}"; username = "{nick}"; realname = "Ivy Irssi"; }}; }};
channels = ( {{ name = "{channel}"; chatnet = "local"; autojoin = "yes"; }} );
settings = {{
  core = {{ real_name = "Ivy Irssi"; user_name = "{nick}"; nick = "{nick}"; settings_autosave = "no"; }};
  "fe-common/core" = {{ timestamps = "yes"; autocreate_query_level = "MSGS"; }};
}};
"""


class Weechat:
    """weechat-headless, driven through its FIFO and read through its logger's files."""

    def __init__(self, work: Path, port: int):
        self.home = work / "weechat"
        self.logs = self.home / "logs"
        self.fifo = self.home / "weechat_fifo"
        self.port = port
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> None:
        self.home.mkdir()
        setup = [
            f"/set logger.file.path {self.logs}",
            "/set logger.file.flush_delay 0",
            "/set logger.file.auto_log on",
            f"/set fifo.file.path {self.fifo}",
            "/set fifo.file.enabled on",
            f"/server add local 127.0.0.1/{self.port} -notls",
            f"/set irc.server.local.nicks {WEECHAT_NICK}",
            f"/set irc.server.local.username {WEECHAT_NICK}",
            '/set irc.server.local.realname "Wendy Weechat"',
            f"/set irc.server.local.autojoin {CHANNEL}",
            "/connect local",
        ]
        command = ["weechat-headless", "-d", str(self.home)]
        for line in setup:
            command += ["-r", line]
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not self.fifo.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("weechat-headless did not open its FIFO (is weechat-plugins installed?)")
            time.sleep(0.1)
        print(f"== started weechat-headless as {WEECHAT_NICK} (PID {self.proc.pid})")

    def command(self, buffer: str, text: str) -> None:
        """Types TEXT (a line or a /command) into BUFFER, e.g. irc.local.#lobby or irc.server.local."""
        with self.fifo.open("w") as fifo:
            fifo.write(f"{buffer} *{text}\n")

    def log(self, buffer: str) -> str:
        path = self.logs / f"{buffer}.weechatlog"
        try:
            return path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        stop(self.proc, "weechat-headless")


class Native:
    """A chatd native-protocol client (docs/PROTOCOL.md): a name line, then text lines and /commands."""

    def __init__(self, port: int):
        self.port = port
        self.sock: Optional[socket.socket] = None
        self.lines: List[str] = []
        self.lock = threading.Lock()
        self.reader: Optional[threading.Thread] = None

    def start(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.sock.settimeout(None)
        self.reader = threading.Thread(target=self.read, name="native-reader", daemon=True)
        self.reader.start()
        self.send(NATIVE_NAME)
        print(f"== connected native client as {NATIVE_NAME}")

    def read(self) -> None:
        buffer = b""
        assert self.sock
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            with self.lock:
                self.lines += [line.decode(errors="replace") for line in complete]

    def send(self, line: str) -> None:
        assert self.sock
        self.sock.sendall(line.encode() + b"\n")

    def transcript(self) -> str:
        with self.lock:
            return "\n".join(self.lines) + ("\n" if self.lines else "")

    def stop(self) -> None:
        if self.sock:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
            self.sock = None


class Checks:
    def __init__(self, step_timeout: float):
        self.step_timeout = step_timeout
        self.passed = 0
        self.failed: List[str] = []

    def expect(self, who: str, what: str, read: Callable[[], str], pattern: str) -> bool:
        """Waits until READ()'s text matches PATTERN (a regex, multiline)."""
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + self.step_timeout
        while True:
            if regex.search(read()):
                self.passed += 1
                print(f"   ok   {who} sees {what}")
                return True
            if time.monotonic() > deadline:
                self.failed.append(f"{who} sees {what}  (no match for /{pattern}/ within {self.step_timeout:g} s)")
                print(f"   FAIL {who} sees {what}: no match for /{pattern}/ within {self.step_timeout:g} s")
                return False
            time.sleep(0.25)


def conversation(irssi: Irssi, weechat: Weechat, native: Optional[Native], checks: Checks) -> None:
    lobby = f"irc.local.{CHANNEL}"
    irssi_lobby = lambda: irssi.screen(CHANNEL)  # noqa: E731
    weechat_lobby = lambda: weechat.log(lobby)  # noqa: E731
    ch = re.escape(CHANNEL)

    print("== joins")
    checks.expect("weechat", "itself join", weechat_lobby, rf"-->\t{WEECHAT_NICK} \(.*\) has joined {ch}$")
    if native:
        native.start()
        checks.expect("native", "its welcome", native.transcript, rf"^SYS Welcome: {NATIVE_NAME}\b")
    checks.expect("irssi", f"{WEECHAT_NICK} join", irssi_lobby, rf"{WEECHAT_NICK} \[[^]]*\] has joined {ch}")
    # irssi was there first, so weechat learns of it from the names list; weechat shows that list on
    # /names (on joining it shows only the count).
    weechat.command(lobby, "/names")
    checks.expect("weechat", f"{IRSSI_NICK} in the names list", weechat_lobby,
                  rf"Nicks {ch}: \[.*\b{IRSSI_NICK}\b")
    if native:
        checks.expect("irssi", f"{NATIVE_NAME} join", irssi_lobby, rf"{NATIVE_NAME} \[[^]]*\] has joined {ch}")
        checks.expect("weechat", f"{NATIVE_NAME} join", weechat_lobby, rf"-->\t{NATIVE_NAME} \(.*\) has joined {ch}$")
        for nick in (IRSSI_NICK, WEECHAT_NICK):
            checks.expect("native", f"{nick} in {CHANNEL}", native.transcript,
                          rf"^SYS {ch} (Online|Joined): {nick}$|^SYS Welcome: .*\b{nick}\b")

    print("== messages")
    irssi.say(CHANNEL, "hello from irssi")
    checks.expect("weechat", "irssi's message", weechat_lobby, rf"\t[@+]?{IRSSI_NICK}\thello from irssi$")
    weechat.command(lobby, "hello from weechat")
    checks.expect("irssi", "weechat's message", irssi_lobby, rf"<[ @+]?{WEECHAT_NICK}> hello from weechat")
    if native:
        checks.expect("native", "irssi's message", native.transcript, rf"^MSG {ch} {IRSSI_NICK}: hello from irssi$")
        checks.expect("native", "weechat's message", native.transcript,
                      rf"^MSG {ch} {WEECHAT_NICK}: hello from weechat$")
        native.send("hello from native")
        checks.expect("irssi", "the native message", irssi_lobby, rf"<[ @+]?{NATIVE_NAME}> hello from native")
        checks.expect("weechat", "the native message", weechat_lobby, rf"\t[@+]?{NATIVE_NAME}\thello from native$")

    print("== /me")
    irssi.say(CHANNEL, "/me waves from irssi")
    checks.expect("weechat", "irssi's action", weechat_lobby, rf"\t \*\t[@+]?{IRSSI_NICK} waves from irssi$")
    weechat.command(lobby, "/me waves from weechat")
    checks.expect("irssi", "weechat's action", irssi_lobby, rf"\* {WEECHAT_NICK} waves from weechat")
    if native:
        checks.expect("native", "irssi's action", native.transcript, rf"^ACT {ch} {IRSSI_NICK} waves from irssi$")
        checks.expect("native", "weechat's action", native.transcript,
                      rf"^ACT {ch} {WEECHAT_NICK} waves from weechat$")
        native.send("/me waves from native")
        checks.expect("irssi", "the native action", irssi_lobby, rf"\* {NATIVE_NAME} waves from native")
        checks.expect("weechat", "the native action", weechat_lobby, rf"\t \*\t[@+]?{NATIVE_NAME} waves from native$")

    print("== topic (set by irssi)")
    irssi.type(f"/topic {CHANNEL} Topic set from irssi")
    checks.expect("weechat", "the new topic", weechat_lobby,
                  rf"{IRSSI_NICK} has changed topic for {ch} to \"Topic set from irssi\"")
    checks.expect("irssi", "the new topic", irssi_lobby,
                  rf"{IRSSI_NICK} changed the topic of {ch} to: Topic set from irssi")
    if native:
        checks.expect("native", "the new topic", native.transcript, rf"^SYS {ch} Topic: \"Topic set from irssi\" \(set by {IRSSI_NICK}\)$")

    print("== private messages")
    irssi.type(f"/msg {WEECHAT_NICK} psst from irssi")
    checks.expect("weechat", "irssi's private message", lambda: weechat.log(f"irc.local.{IRSSI_NICK}"),
                  rf"\t{IRSSI_NICK}\tpsst from irssi$")
    weechat.command("irc.server.local", f"/msg {IRSSI_NICK} psst from weechat")
    checks.expect("irssi", "weechat's private message", lambda: irssi.screen(WEECHAT_NICK),
                  rf"<{WEECHAT_NICK}> psst from weechat")
    if native:
        irssi.type(f"/msg {NATIVE_NAME} psst to native from irssi")
        checks.expect("native", "irssi's private message", native.transcript,
                      rf"^PRIV {IRSSI_NICK}: psst to native from irssi$")
        weechat.command("irc.server.local", f"/msg {NATIVE_NAME} psst to native from weechat")
        checks.expect("native", "weechat's private message", native.transcript,
                      rf"^PRIV {WEECHAT_NICK}: psst to native from weechat$")
        native.send(f"/msg {IRSSI_NICK} psst to irssi from native")
        checks.expect("irssi", "the native private message", lambda: irssi.screen(NATIVE_NAME),
                      rf"<{NATIVE_NAME}> psst to irssi from native")
        native.send(f"/msg {WEECHAT_NICK} psst to weechat from native")
        checks.expect("weechat", "the native private message", lambda: weechat.log(f"irc.local.{NATIVE_NAME}"),
                      rf"\t{NATIVE_NAME}\tpsst to weechat from native$")

    print("== quit (weechat, then the native client, then irssi)")
    if native:
        # weechat's quit is watched by both others, so it goes before the native client's.
        weechat.command("irc.server.local", "/quit weechat leaves")
        checks.expect("native", "weechat's quit", native.transcript,
                      rf"^SYS {ch} Offline: {WEECHAT_NICK} \(quit: \"weechat leaves\"\)$")
    else:
        weechat.command("irc.server.local", "/quit weechat leaves")
    checks.expect("irssi", "weechat's quit", irssi_lobby,
                  rf"{WEECHAT_NICK} \[[^]]*\] has quit \[(Quit: )?weechat leaves\]")
    # weechat-headless exits after /quit; its log is complete once it has.
    if weechat.proc:
        try:
            weechat.proc.wait(10)
        except subprocess.TimeoutExpired:
            checks.failed.append("weechat-headless did not exit within 10 s of /quit")
    if native:
        native.send("/quit native leaves")
        checks.expect("native", "its goodbye", native.transcript, r"^SYS Bye: ")
        checks.expect("irssi", "the native quit", irssi_lobby,
                      rf"{NATIVE_NAME} \[[^]]*\] has quit \[(Quit: )?native leaves\]")
    irssi.capture()
    irssi.type("/quit irssi leaves")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=["chatd", "inspircd"], default="chatd")
    parser.add_argument("--chatd", default=os.environ.get("CHATD_BIN", str(REPO / ".build/debug/chatd")))
    native = parser.add_mutually_exclusive_group()
    native.add_argument("--native", dest="native", action="store_true", default=None,
                        help="include the native client (default with chatd)")
    native.add_argument("--no-native", dest="native", action="store_false")
    parser.add_argument("--artifacts", help="folder for the screens and logs (default: a temp folder, removed)")
    parser.add_argument("--step-timeout", type=float, default=15.0)
    parser.add_argument("--timeout", type=float, default=240.0, help="the whole run, in seconds")
    args = parser.parse_args()
    use_native = args.native if args.native is not None else args.server == "chatd"
    if use_native and args.server != "chatd":
        parser.error("the native client needs --server chatd")
    for tool in ("tmux", "irssi", "weechat-headless") + (("inspircd",) if args.server == "inspircd" else ()):
        if not shutil.which(tool):
            print(f"== FAIL: {tool} is not installed")
            return 1

    def on_deadline(signum, frame):
        raise TimeoutError(f"the client test did not finish within {args.timeout:g} s")

    def on_terminate(signum, frame):
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGALRM, on_deadline)
    signal.signal(signal.SIGTERM, on_terminate)
    signal.alarm(int(args.timeout))

    work = Path(tempfile.mkdtemp(prefix="chatd-irc-clients."))
    artifacts = Path(args.artifacts) if args.artifacts else work / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    server = Server(args.server, Path(args.chatd), work)
    irssi = Irssi(work, server.irc_port)
    weechat = Weechat(work, server.irc_port)
    client = Native(0) if use_native else None
    checks = Checks(args.step_timeout)
    error: Optional[BaseException] = None
    try:
        server.start()
        if client:
            client.port = server.native_port or 0
        # irssi first: it founds the channel and is its operator, so its /topic is allowed.
        irssi.start()
        checks.expect("irssi", "itself join (before the others connect)", lambda: irssi.screen(CHANNEL),
                      rf"{IRSSI_NICK} \[[^]]*\] has joined {re.escape(CHANNEL)}")
        weechat.start()
        conversation(irssi, weechat, client, checks)
    except BaseException as e:  # a timeout or a broken step: still save and print what each side saw
        error = e
    finally:
        signal.alarm(0)
        try:
            if irssi.started and not irssi.screens:  # the run broke off before its own capture
                irssi.capture()
        except Exception as e:  # irssi already gone: the screens we have are what there is
            print(f"== could not capture irssi's screen: {e}")
        irssi.stop()
        weechat.stop()
        if client:
            client.stop()
        server.stop()

    kept = "" if args.artifacts else " (removed after this run; --artifacts DIR keeps them)"
    print(f"\n== artifacts in {artifacts}{kept}")
    for window, text in irssi.screens.items():
        if window == NATIVE_NAME and not client:
            continue
        name = f"irssi-{window.lstrip('#')}.screen.txt"
        (artifacts / name).write_text(text)
        print(f"---- {name} (tmux capture-pane after /window goto {window}; blank rows folded)")
        print(re.sub(r"\n(\s*\n)+", "\n\n", text.rstrip()))
    if weechat.logs.is_dir():
        for log in sorted(weechat.logs.glob("*.weechatlog")):
            shutil.copy(log, artifacts / f"weechat-{log.name}")
            if log.name.startswith("irc.server.") or log.name.startswith("core."):
                continue
            print(f"---- weechat-{log.name}")
            print(log.read_text(errors="replace").rstrip())
    if client:
        (artifacts / "native.txt").write_text(client.transcript())
        print("---- native.txt (lines the native client received)")
        print(client.transcript().rstrip())
    if server.log_path.exists():
        shutil.copy(server.log_path, artifacts / server.log_path.name)

    if error is not None and not isinstance(error, (TimeoutError, SystemExit, KeyboardInterrupt)):
        print(f"== error: {type(error).__name__}: {error}")
    elif error is not None:
        print(f"== stopped: {error}")
    verdict_ok = error is None and not checks.failed
    print(f"\n== irc clients ({args.server}{', native' if client else ''}): {checks.passed} checks passed, "
          f"{len(checks.failed)} failed{'' if error is None else ', run aborted'}")
    for failure in checks.failed:
        print(f"   FAIL {failure}")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if verdict_ok else 1


if __name__ == "__main__":
    sys.exit(main())
