#!/bin/bash
# Stop the demo CA started by `make run` (conf/demo/run.sh).
# Quiet when it is not running; exits 1 only if it refuses to stop.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RUN="$ROOT/run"
PIDFILE="$RUN/httpd.pid"

[[ -f $PIDFILE ]] || exit 0
pid=$(tr -dc '0-9' <"$PIDFILE")

# Only ever signal our own httpd: the pid must be alive and be an httpd
# started with this checkout's run/httpd.conf (pids get reused).
if [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null ||
   ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$RUN/httpd.conf"; then
    rm -f "$PIDFILE"
    exit 0
fi

# SIGTERM = `apache2 -k stop` (without needing a parsable configuration, so this
# also works after `make clean` removed the module).
kill -TERM "$pid" 2>/dev/null || true
for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
    echo "demo httpd (pid $pid) did not stop within 15 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
    if kill -0 "$pid" 2>/dev/null; then
        echo "demo httpd (pid $pid) is still running" >&2
        exit 1
    fi
fi
rm -f "$PIDFILE"
echo "demo CA stopped (pid $pid)"
