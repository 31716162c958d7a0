#!/usr/bin/env bash
# CI: the systemd units in deploy/ load cleanly and the service's sandbox scores an exposure of at most 2.0.
#  1. `systemd-analyze verify` in a throwaway root (the host's unit tree, chatd at the unit's ExecStart path):
#     any output at all fails, because unknown keys and bad values are only warnings with exit status 0.
#  2. `systemd-analyze security --offline=yes`: exposure <= 2.0 (its --threshold scale is 0-100, so 20).
#  3. deploy/chatd.conf names exactly the settings `chatd --help` offers.
# Bounded: the build gets 150 s, each check 30 s. Env: CHATD_SCRATCH (swift build --scratch-path), default .build.
set -euo pipefail
cd "$(dirname "$0")/../.."
scratch=${CHATD_SCRATCH:-.build}
threshold=2.0

root=$(mktemp -d /tmp/chatd-units.XXXXXX)
trap 'rm -rf "$root"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# systemd-analyze touches /run/systemd/systemd-units-load (the manager it runs in test mode does): give it a
# private mount namespace with a tmpfs there, so the check writes nothing on the host.
isolated() { unshare --mount --propagation private -- sh -c 'mount -t tmpfs chatd-ci /run/systemd && exec "$@"' sh "$@"; }

echo "-- building chatd (debug) for the unit's ExecStart"
timeout 150 swift build --scratch-path "$scratch" --product chatd 2>&1 | tail -1
chatd="$(swift build --scratch-path "$scratch" --show-bin-path)/chatd"
[ -x "$chatd" ] || fail "no chatd binary at $chatd"

# A root that looks like an installed system: the host's units (verify wants sysinit.target and friends),
# /bin/kill for ExecReload, chatd where ExecStart expects it, and our units where install.sh puts them.
exec_start=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' deploy/chatd.service)
mkdir -p "$root/usr/lib/systemd" "$root/usr/bin" "$root/etc/systemd/system" "$root$(dirname "$exec_start")"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
ln -s usr/bin "$root/bin"
cp /usr/bin/kill "$root/usr/bin/kill"
cp "$chatd" "$root$exec_start"
cp deploy/chatd.service deploy/chatd.socket deploy/chatd-irc.socket "$root/etc/systemd/system/"

echo "-- systemd-analyze verify chatd.socket chatd-irc.socket chatd.service"
set +e
output=$(isolated timeout 30 systemd-analyze verify --root="$root" chatd.socket chatd-irc.socket chatd.service 2>&1)
status=$?
set -e
[ -z "$output" ] || { echo "$output"; fail "systemd-analyze verify printed something (status $status)"; }
[ "$status" -eq 0 ] || fail "systemd-analyze verify exited $status"
echo "   clean"

# The check must be able to fail: a unit with an unknown key has to produce output.
sed 's/^\[Service\]$/[Service]\nNoSuchKey=1/' deploy/chatd.service > "$root/etc/systemd/system/chatd.service"
broken=$(isolated timeout 30 systemd-analyze verify --root="$root" chatd.service 2>&1 || true)
[[ "$broken" == *NoSuchKey* ]] || fail "verify did not flag an unknown key; the check is blind: $broken"
cp deploy/chatd.service "$root/etc/systemd/system/chatd.service"

echo "-- systemd-analyze security --offline=yes chatd.service"
set +e
report=$(isolated timeout 30 systemd-analyze security --offline=yes --threshold=20 deploy/chatd.service 2>&1)
status=$?
set -e
echo "$report" | grep '✗' || true
score=$(echo "$report" | sed -n 's/.*Overall exposure level for chatd.service: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || { echo "$report"; fail "no exposure score in the report"; }
echo "   exposure $score (threshold $threshold)"
awk -v s="$score" -v t="$threshold" 'BEGIN { exit !(s <= t) }' || fail "exposure $score is above $threshold"
[ "$status" -eq 0 ] || fail "systemd-analyze security exited $status"

echo "-- deploy/chatd.conf against chatd --help"
flags=$("$chatd" --help | grep -o -- '--[a-z][a-z0-9-]*' | sed 's/^--//' | grep -vx -e help -e config -e version | sort -u)
keys=$(sed -n 's/^#\{0,1\}\([a-z][a-z0-9-]*\) = .*/\1/p' deploy/chatd.conf | sort -u)
if [ "$flags" != "$keys" ]; then
    diff <(echo "$flags") <(echo "$keys") | sed 's/^</   only in --help:/; s/^>/   only in chatd.conf:/' | grep only || true
    fail "deploy/chatd.conf and chatd --help disagree"
fi
echo "   $(echo "$keys" | wc -l) settings, in sync"
echo "ok: units verify cleanly, exposure $score <= $threshold"
