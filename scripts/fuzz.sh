#!/usr/bin/env bash
# Fuzzes ChatCore's parsers and the hub with libFuzzer + AddressSanitizer.
# Usage: scripts/fuzz.sh [SECONDS]   (default 60; run for longer by hand, e.g. 1800)
# A crash leaves a reproducer in .build-fuzz/artifacts/ and exits non-zero; turn it into a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
out=.build-fuzz
mkdir -p "$out/corpus" "$out/artifacts"
echo "building the fuzzer (ChatCore + ChatFronts sources + Fuzz/FuzzChatCore.swift, -sanitize=fuzzer,address)"
# One module, so internals are reachable: the fronts' `import ChatCore` lines go, in copies.
rm -rf "$out/fronts" && mkdir -p "$out/fronts"
find Sources/ChatFronts -name '*.swift' | while read -r file; do
    sed '/^import ChatCore$/d' "$file" > "$out/fronts/$(echo "${file#Sources/ChatFronts/}" | tr / _)"
done
swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name ChatCoreFuzz \
    Sources/ChatCore/*.swift "$out"/fronts/*.swift Fuzz/FuzzChatCore.swift -o "$out/fuzz-chatcore" 2>&1 | grep -v "ld.gold: warning: Cannot export local symbol" || true
[ -x "$out/fuzz-chatcore" ] || { echo "fuzzer build failed"; exit 1; }
echo "fuzzing for ${seconds}s (seed corpus: Fuzz/corpus)"
set +e
"$out/fuzz-chatcore" -max_total_time="$seconds" -max_len=1024 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$out/artifacts/" -print_final_stats=1 "$out/corpus" Fuzz/corpus >"$out/fuzz.log" 2>&1
status=$?
set -e
grep -E "^Done|stat::number_of_executed_units|stat::peak_rss|ERROR|SUMMARY|panic|Fatal" "$out/fuzz.log" | head -20
if [ "$status" -ne 0 ]; then
    echo "fuzzer found a problem (exit $status); reproducer in $out/artifacts/:"
    ls "$out/artifacts/"
    tail -40 "$out/fuzz.log"
    exit 1
fi
