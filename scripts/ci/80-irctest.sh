#!/usr/bin/env bash
# irctest, the IRC servers' conformance suite (pinned snapshot in ../shared/irctest), against chatd's IRC front:
# issue 10's 22 modules under the markers 'not services and not implementation-specific and not deprecated and
# not strict'. Fails on any failure, and on any skip or expected failure that scripts/irc/chatd_controller.py
# does not list with its reason. Needs python3-venv (PyPI: pytest, filelock, ecdsa, websockets); bounded by
# IRCTEST_TIMEOUT (default 1200 s), each test by IRCTEST_TEST_TIMEOUT (60 s). About a minute here.
exec bash "$(dirname "$0")/../irc/irctest.sh" "$@"
