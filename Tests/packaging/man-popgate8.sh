#!/usr/bin/env bash
# popgate(8) is generated from the argument parser (swift-argument-parser's generate-manual plugin,
# which runs `popgate --experimental-dump-help`), so it cannot say other than the binary does.
#
#   Tests/packaging/man-popgate8.sh           check: regenerate and diff against docs/man/popgate.8
#                                             (the page's own date is kept); fails on any difference
#   Tests/packaging/man-popgate8.sh --write   regenerate docs/man/popgate.8 with today's date (`make man`)
#
# SWIFT (default swift) and SCRATCH (swift's --scratch-path, default .build) as in the Makefile.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
swift=${SWIFT:-swift}
scratch=${SCRATCH:-.build}
page=docs/man/popgate.8
mode=${1:-check}

if [ "$mode" = --write ]; then
    date=$(date -u +%F)
else
    # The date on the committed page: only the content is compared.
    dd=$(sed -n 's/^\.Dd //p' "$page")
    date=$(date -u -d "$dd" +%F)
fi

"$swift" package --scratch-path "$scratch" plugin generate-manual --configuration debug --section 8 --date "$date" >/dev/null
generated="$scratch/plugins/GenerateManual/outputs/popgate/popgate.8"

if [ "$mode" = --write ]; then
    cp "$generated" "$page"
    echo "wrote $page"
    exit 0
fi
if ! diff -u "$page" "$generated"; then
    echo "man-popgate8: FAIL: $page differs from the argument parser; run 'make man' and commit the page" >&2
    exit 1
fi
# The page must also be valid for man(1): no warnings from groff.
if warnings=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null) && [ -n "$warnings" ]; then
    echo "man-popgate8: FAIL: groff warnings in $page:" >&2
    echo "$warnings" >&2
    exit 1
fi
echo "man-popgate8: OK ($page matches the argument parser)"
