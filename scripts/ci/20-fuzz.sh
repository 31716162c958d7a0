#!/usr/bin/env bash
# CI: a bounded libFuzzer run over ChatCore (about a minute); see scripts/fuzz.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout 300 bash scripts/fuzz.sh 60
