#!/usr/bin/env bash
# Prints what failed in each vitest log given (colours stripped): the "Failed Tests" sections, then
# last a short list of the failed tests with the first line of each error, so that the final lines
# of a red `make test` name what failed, whichever of the side-by-side runs it was in.
strip() { sed 's/\x1b\[[0-9;]*m//g' "$1"; }
for log in "$@"; do
  [ -f "$log" ] || continue
  section=$(strip "$log" | sed -n '/Failed Tests [0-9]/,/Test Files/p')
  [ -n "$section" ] || continue
  echo
  echo "=== failures in $log ==="
  printf '%s\n' "$section" | head -150
done
for log in "$@"; do
  [ -f "$log" ] || continue
  strip "$log" | sed -n '/Failed Tests [0-9]/,/Test Files/p' | grep -A1 -E '^ FAIL ' | grep -v '^--$' | cut -c1-300
done
