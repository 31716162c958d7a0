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

EXPECTED: Dict[str, Tuple[str, str]] = {}


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
