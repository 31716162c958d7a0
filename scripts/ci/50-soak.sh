#!/usr/bin/env bash
# CI: a bounded churn soak (about 40 s): thousands of connects and leaves, random senders, clients that stop
# reading; every loss must be announced exactly, RSS flat, fds back to baseline. See scripts/soak.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product chatd 2>&1 | tail -1
timeout 180 python3 scripts/soak.py --chatd .build/release/chatd --duration 40 --clients 600 --rate 60
