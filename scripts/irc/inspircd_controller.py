"""irctest controller for Debian's InspIRCd, only to prove the harness (irctest.sh --server inspircd).

It is irctest's own InspIRCd controller with four changes: the server log goes under TMPDIR
(upstream writes /tmp/ircd-PORT.log, outside the folder the harness cleans up); `--runasroot` when we
are root, as in CI containers (InspIRCd refuses to start as root otherwise); the HELPOP example is
included from where Debian installs it (/usr/share/doc, not /etc/inspircd/examples); and EXPECTED lists what
InspIRCd 3.15 fails in our selection, which exercises the same list mechanism chatd's controller uses.
Nothing here is needed by chatd's CI.
"""

from __future__ import annotations

import os
import tempfile
from typing import Dict, Tuple, Type

from irctest.controllers import inspircd as upstream
from irctest_harness import record_server_pid

upstream.TEMPLATE_CONFIG = upstream.TEMPLATE_CONFIG.replace(
    'target="/tmp/ircd-{port}.log"', f'target="{tempfile.gettempdir()}/ircd-{{port}}.log"'
)
assert tempfile.gettempdir() in upstream.TEMPLATE_CONFIG, "irctest's InspIRCd log line changed"

DEBIAN_HELPOP = "/usr/share/doc/inspircd/examples/helpop.conf.example"
if os.path.exists(DEBIAN_HELPOP):
    upstream.TEMPLATE_V3_CONFIG = upstream.TEMPLATE_V3_CONFIG.replace(
        '"examples/helpop.conf.example"', f'"{DEBIAN_HELPOP}"'
    )

# What Debian's InspIRCd 3.15 does not do in our selection (measured here, see scripts/irc/irctest.sh).
EXPECTED: Dict[str, Tuple[str, str]] = {
    "irctest/server_tests/messages.py::NoticeTestCase::testNoticeNonexistentChannel": (
        "xfail", "irctest marks it: InspIRCd answers ERR_NOSUCHCHANNEL to a NOTICE (RFC: never reply to NOTICE)"),
    "irctest/server_tests/names.py::NamesTestCase::testNamesMultipleChannels2812": (
        "skip", "InspIRCd's NAMES takes one channel (irctest's optional MULTI_NAMES_COMMAND)"),
    "irctest/server_tests/kick.py::KickTestCase::testDoubleKickMessages": (
        "skip", "InspIRCd's KICK takes one nick (irctest's optional MULTI_KICK)"),
    "irctest/server_tests/who.py::WhoTestCase::testWhoUsernameRealName": (
        "skip", "irctest skips it for every server: not consistently implemented"),
    "irctest/server_tests/who.py::WhoTestCase::testWhoRealNameSpaces": (
        "skip", "irctest skips it for every server: not consistently implemented"),
    "irctest/server_tests/isupport.py::IsupportTestCase::testValues": (
        "skip", "irctest's InspIRCd controller declares no expected ISUPPORT values"),
    "irctest/server_tests/isupport.py::IsupportTestCase::testTargmax": (
        "skip", "InspIRCd 3 does not advertise TARGMAX"),
    "irctest/server_tests/utf8.py::Utf8TestCase::testUtf8Validation": (
        "skip", "InspIRCd 3 has no UTF8ONLY (its ircv3_utf8only module is InspIRCd 4)"),
    "irctest/server_tests/utf8.py::Utf8TestCase::testNonutf8Realname": (
        "skip", "InspIRCd 3 has no UTF8ONLY"),
    "irctest/server_tests/utf8.py::Utf8TestCase::testNonutf8Username": (
        "skip", "InspIRCd 3 has no UTF8ONLY"),
    "irctest/server_tests/list.py::FaketimeListTestCase::testListCreationTime": (
        "skip", "needs libfaketime (not installed); without it the test sleeps real minutes and times out"),
    "irctest/server_tests/list.py::FaketimeListTestCase::testListTopicTime": (
        "skip", "needs libfaketime (not installed); without it the test sleeps real minutes and times out"),
}


class InspircdController(upstream.InspircdController):
    def execute(self, command, *args, **kwargs):
        if os.geteuid() == 0 and "--runasroot" not in command:
            command = [*command, "--runasroot"]
        return super().execute(command, *args, **kwargs)

    def run(self, *args, **kwargs) -> None:
        super().run(*args, **kwargs)
        assert self.proc
        record_server_pid(self.proc.pid)


def get_irctest_controller_class() -> Type[InspircdController]:
    return InspircdController
