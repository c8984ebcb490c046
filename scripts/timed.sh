#!/usr/bin/env bash
# Runs a command and prints its phase name and time, so CI logs show where the minutes go:
#   scripts/timed.sh lint uv run ruff check .
name=$1
shift
start=$SECONDS
status=0
"$@" || status=$?
echo "== phase $name: $((SECONDS - start)) s (exit $status)"
exit "$status"
