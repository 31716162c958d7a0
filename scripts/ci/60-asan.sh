#!/usr/bin/env bash
# CI: the test suite under AddressSanitizer (the end-to-end tests then run the ASan-built chatd too),
# then a short churn soak against that chatd with LeakSanitizer reporting at exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
# Leak detection is off for the test process itself (XCTest and Foundation keep allocations alive at exit);
# the daemon is leak-checked on its own below.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
echo "building with -sanitize=address"
swift build --build-tests --sanitize=address --scratch-path .build-asan 2>&1 | grep -E "error|warning: " || true
set +e
timeout 900 swift test --skip-build --sanitize=address --scratch-path .build-asan >/tmp/chatd-asan-test.log 2>&1
status=$?
set -e
grep -E "ERROR: AddressSanitizer|ERROR: LeakSanitizer|SUMMARY: AddressSanitizer|Executed [0-9]+ tests|error:" /tmp/chatd-asan-test.log | tail -20
[ "$status" -eq 0 ] || { echo "tests under ASan failed ($status)"; exit 1; }

# Leak check of the daemon under churn: LeakSanitizer reports at exit (after SIGTERM) into the log.
log=$(mktemp -d)/chatd-lsan
export ASAN_OPTIONS=detect_leaks=1:log_path=$log
timeout 120 python3 scripts/soak.py --chatd .build-asan/debug/chatd --duration 15 --clients 200 --rate 20 --no-rss-bound
if ls "$log".* >/dev/null 2>&1; then
    echo "sanitizer report from chatd:"; cat "$log".*; exit 1
fi
echo "LeakSanitizer: no leaks reported by chatd after a 15 s churn soak"
