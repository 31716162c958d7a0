"""pytest plugin (`-p irctest_harness`) for irctest runs from scripts/irc/irctest.sh: holds a run to the
controller's own list of expected skips and failures, bounds each test in time, and records the PIDs
of the servers controllers start so the script can stop any that a killed run left behind.

irctest's own per-server exclusions live in its Makefile as `-k` expressions, which we cannot extend
without patching the snapshot. So the controller module named by `--controller` declares

    EXPECTED = {"irctest/server_tests/join.py::JoinTestCase::testJoinTwice": ("xfail", "why"), ...}

and this plugin applies it:
- "skip": the test is not run and is reported as skipped with that reason;
- "xfail": the test runs as a strict xfail, so one that starts passing fails the run (the list must
  shrink when the server improves, not rot);
- a test that skips by itself (a capability refused, a feature the controller raises
  NotImplementedByController for) or that irctest itself marks as an expected failure for this
  software, without being listed, fails the run: a skip is not a pass, and every one must be written
  down with its reason;
- an entry that names no collected test of a collected module, or a file that does not exist, fails the
  run (a typo or a renamed test would otherwise hide).

An entry may name a parametrized test without its `[...]` suffix to cover every parameter.
Each test's setup and call are bounded in time (IRCTEST_TEST_TIMEOUT seconds, default 60), so a
server that never answers fails that test with a clear message instead of hanging the whole run.
"""

from __future__ import annotations

import importlib
import os
import signal
from typing import Dict, List, Tuple

import pytest

OUTCOMES = ("skip", "xfail")


def record_server_pid(pid: int) -> None:
    """Called by controllers right after starting a server process."""
    path = os.environ.get("IRCTEST_SERVER_PID_FILE")
    if path:
        with open(path, "a") as pids:
            pids.write(f"{pid}\n")


_expected: Dict[str, Tuple[str, str]] = {}
_unlisted: List[Tuple[str, str, str]] = []
_stale_entries: List[str] = []


def _load_expected(config: pytest.Config) -> Dict[str, Tuple[str, str]]:
    module_name = config.getoption("controller")
    if not module_name:
        return {}
    module = importlib.import_module(module_name)
    expected = getattr(module, "EXPECTED", {})
    for nodeid, entry in expected.items():
        if (
            not isinstance(entry, tuple)
            or len(entry) != 2
            or entry[0] not in OUTCOMES
            or not str(entry[1]).strip()
        ):
            raise pytest.UsageError(
                f"{module_name}.EXPECTED[{nodeid!r}] must be (one of {OUTCOMES}, a non-empty reason), "
                f"not {entry!r}"
            )
    return dict(expected)


def _entry_for(nodeid: str):
    if nodeid in _expected:
        return nodeid, _expected[nodeid]
    base = nodeid.split("[", 1)[0]
    if base in _expected:
        return base, _expected[base]
    return None, None


# Runs before pytest's own -m/-k deselection, so an entry for a test the markers deselect is still
# recognised as naming a real test rather than reported stale.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    global _expected
    _expected = _load_expected(config)
    matched = set()
    for item in items:
        key, entry = _entry_for(item.nodeid)
        if entry is None:
            continue
        matched.add(key)
        outcome, reason = entry
        if outcome == "skip":
            item.add_marker(pytest.mark.skip(reason=f"listed in the controller: {reason}"))
        else:
            item.add_marker(pytest.mark.xfail(reason=f"listed in the controller: {reason}", strict=True))
    # When only some modules are collected, entries for the others cannot be checked, but their file
    # must still exist.
    collected_files = {item.nodeid.split("::", 1)[0] for item in items}
    _stale_entries[:] = sorted(
        key
        for key in set(_expected) - matched
        if key.split("::", 1)[0] in collected_files
        or not (config.rootpath / key.split("::", 1)[0]).is_file()
    )


def pytest_collection_finish(session):
    if _stale_entries:
        names = "\n  ".join(_stale_entries)
        raise pytest.UsageError(f"EXPECTED entries that name no collected test:\n  {names}")


class TimedOut(Exception):
    pass


def _bounded():
    limit = int(os.environ.get("IRCTEST_TEST_TIMEOUT", "60"))

    def on_alarm(signum, frame):
        raise TimedOut(f"still running after {limit} s (IRCTEST_TEST_TIMEOUT)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(limit)
    try:
        return (yield)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# Setup is bounded too: that is where the controller starts the server and waits for its port.
@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    return (yield from _bounded())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    return (yield from _bounded())


def pytest_runtest_logreport(report):
    if not report.skipped:
        return
    _, entry = _entry_for(report.nodeid)
    if hasattr(report, "wasxfail"):
        # irctest's own xfailIfSoftware marks count too: the list must name every expected failure.
        if entry is None:
            _unlisted.append((report.nodeid, "xfailed", report.wasxfail))
        return
    if entry is not None and entry[0] == "skip":
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    _unlisted.append((report.nodeid, "skipped", reason))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _unlisted:
        terminalreporter.section("skipped or xfailed but not listed in the controller's EXPECTED", red=True)
        for nodeid, outcome, reason in _unlisted:
            terminalreporter.line(f"{outcome} {nodeid}: {reason}")


def pytest_sessionfinish(session, exitstatus):
    if _unlisted and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
