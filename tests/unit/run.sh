#!/bin/sh
# Runs each unit-test binary given as argument; prints the totals as
# "unit: N passed, N failed" and fails when any test failed.
passed=0; failed=0; rc=0
for t in "$@"; do
    echo "== $t"
    out=$("$t") || rc=1
    echo "$out"
    line=$(printf '%s\n' "$out" | tail -n 1)
    p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
    f=$(echo "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
    if [ -z "$p" ]; then echo "$t: no result line (crashed?)"; rc=1; failed=$((failed+1)); continue; fi
    passed=$((passed+p)); failed=$((failed+f))
done
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ $rc -eq 0 ]
