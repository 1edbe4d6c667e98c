#!/usr/bin/env bash
# The integration suite (Tests/integration) against a sanitizer build of the daemon:
#   bash Tests/sanitizers/integration.sh address    (make integration-test-asan; .build-asan)
#   bash Tests/sanitizers/integration.sh thread     (make integration-test-tsan; .build-tsan)
# Any report from any popgate process fails the run, also when every test passed: each process writes
# its reports to a temp folder, checked at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
SWIFT="${SWIFT:-swift}"
PYTHON="${PYTHON:-python3}"
sanitizer="${1:?usage: integration.sh address|thread}"
case "$sanitizer" in
  address) scratch=.build-asan ;;
  thread) scratch=.build-tsan ;;
  *) echo "integration.sh: unknown sanitizer $sanitizer" >&2; exit 2 ;;
esac

"$SWIFT" build --sanitize="$sanitizer" --scratch-path "$scratch"
reports="$(mktemp -d "${TMPDIR:-/tmp}/popgate-$sanitizer.XXXXXX")"
status=0
# ASan: leaks are checked at each daemon exit, less the false positives in lsan.supp.
# Deselected: the VmHWM bound of a 25 MB RETR; ASan's quarantine holds up to 256 MB of freed memory
# (and TSan's shadow grows with it), so the high-water mark measures the sanitizer, not the gateway.
# quarantine_size_mb=16: the default 256 MB of quarantined frees would swamp the memory bounds of
# Tests/integration/test_hostile.py (which scale by 4 under POPGATE_SANITIZER).
POPGATE_SANITIZER="$sanitizer" \
ASAN_OPTIONS="detect_leaks=1:quarantine_size_mb=16:log_path=$reports/report" \
LSAN_OPTIONS="suppressions=$PWD/Tests/sanitizers/lsan.supp:print_suppressions=0" \
TSAN_OPTIONS="log_path=$reports/report" \
POPGATE_BIN="$PWD/$scratch/debug/popgate" \
  "$PYTHON" -m pytest ${PYTEST_ARGS:--q} Tests/integration -k "not test_big_retr_memory_and_bytes" || status=$?
if compgen -G "$reports/report.*" >/dev/null; then
  echo "integration ($sanitizer): sanitizer reports from popgate (in $reports):" >&2
  cat "$reports"/report.* >&2
  status=1
else
  rm -rf "$reports"
fi
exit "$status"
