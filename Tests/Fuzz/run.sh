#!/usr/bin/env bash
# Builds the libFuzzer targets (Tests/Fuzz/README.md) and runs each for SECONDS.
#   bash Tests/Fuzz/run.sh [SECONDS] [TARGET...]      (default 300 s, all targets)
# New corpus units, logs and crash artifacts go to a temp directory (printed), never into the repo; it is
# removed after a clean run unless FUZZ_KEEP=1.
# Exits non-zero when a target crashed, timed out or ran out of memory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

seconds="${1:-300}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(FuzzSession FuzzIMAPParser FuzzDotStuffer FuzzSASL FuzzConfig FuzzProxyHeader)
fi
SWIFT="${SWIFT:-swift}"
scratch=.build-fuzz
# Fuzzing wants optimised code; -parse-as-library because libFuzzer (via Tests/Fuzz/FuzzMain) owns main.
flags=(--scratch-path "$scratch" -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library)

work="$(mktemp -d "${TMPDIR:-/tmp}/popgate-fuzz.XXXXXX")"
for target in "${targets[@]}"; do
  echo "fuzz: building $target"
  if ! POPGATE_FUZZ=1 "$SWIFT" build "${flags[@]}" --product "$target" >"$work/build-$target.log" 2>&1; then
    cat "$work/build-$target.log" >&2
    echo "fuzz: build of $target failed" >&2
    exit 1
  fi
done

echo "fuzz: ${seconds}s per target; new corpus units, logs and crash artifacts in $work"
failed=()
for target in "${targets[@]}"; do
  mkdir -p "$work/$target/corpus" "$work/$target/artifacts"
  log="$work/$target/log"
  status=0
  # The first corpus folder receives new units (temp); the committed seeds are only read.
  # libFuzzer's leak check stays on (an input that leaks is a crash). SWIFT_BACKTRACE off: Swift's
  # crash handler reads memory that ASan poisons and turns a broken invariant into an ASan report
  # about itself.
  SWIFT_BACKTRACE=enable=no "$scratch/release/$target" \
    "$work/$target/corpus" "Tests/Fuzz/corpus/$target" \
    -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/$target/artifacts/" >"$log" 2>&1 || status=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  if [ "$status" -eq 0 ]; then
    printf 'fuzz: %-15s %10s execs (%s/s) in %ss: ok\n' "$target" "${execs:-?}" "${rate:-?}" "$seconds"
  else
    printf 'fuzz: %-15s %10s execs: FAILED (exit %s)\n' "$target" "${execs:-?}" "$status"
    # From the first sign of trouble: the broken invariant (Swift's fatal error) or the sanitizer report.
    awk '/Fatal error|ERROR: |==ERROR|deadly signal|timeout|out-of-memory/ {on=1} on && !/NEW_FUNC/' "$log" \
      | head -60 | sed 's/^/    /'
    ls "$work/$target/artifacts/" | sed "s|^|    artifact: $work/$target/artifacts/|"
    failed+=("$target")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (reproduce: $scratch/release/TARGET ARTIFACT; logs in $work)" >&2
  exit 1
fi
# Nothing to look at: keep the new corpus units only when asked (FUZZ_KEEP=1).
if [ -z "${FUZZ_KEEP:-}" ]; then rm -rf "$work"; fi
