#!/usr/bin/env bash
# CI: ThreadSanitizer where more than one thread touches shared state: the tests that run the server on a
# thread of its own beside the test thread, and chat-loadgen with several loop threads.
set -euo pipefail
cd "$(dirname "$0")/../.."
echo "building with -sanitize=thread"
swift build --build-tests --sanitize=thread --scratch-path .build-tsan 2>&1 | grep -E "error|warning: " || true
export TSAN_OPTIONS=halt_on_error=1
set +e
timeout 600 swift test --skip-build --sanitize=thread --scratch-path .build-tsan \
    --filter "ChatServerTests.ChatServerTests|RobustnessTests|FlushIntervalTests" >/tmp/chatd-tsan-test.log 2>&1
status=$?
set -e
grep -E "WARNING: ThreadSanitizer|SUMMARY: ThreadSanitizer|Executed [0-9]+ tests|error:" /tmp/chatd-tsan-test.log | tail -10
[ "$status" -eq 0 ] || { echo "tests under TSan failed ($status)"; exit 1; }

# chat-loadgen with two loop threads against a chatd (built normally: TSan is for the threaded side).
swift build --product chatd 2>&1 | tail -1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
.build/debug/chatd --listen "127.0.0.1:$port" --message-rate 0 --max-clients-per-address 0 --connect-rate 0 --log-level warning &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
timeout 120 .build-tsan/debug/chat-loadgen -p "$port" -n 200 -k 4 -r 50 -d 3 --threads 2 2>&1 | grep -E "loss|deliveries|WARNING: ThreadSanitizer"
echo "ThreadSanitizer: no data races reported"
