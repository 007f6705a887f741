#!/bin/sh
# The live half of `make demo`: capture SIP on loopback with `otus run -i lo` while sipp places
# three calls there, then stop Otus with SIGINT so it prints its summary.
#   samples/live_demo.sh [OTUS]     (OTUS: the otus command, default .venv/bin/otus)
# Needs root (AF_PACKET) and sipp; otherwise it says why the live part is skipped and exits 0.
set -u
otus=${1:-.venv/bin/otus}
if [ "$(id -u)" != 0 ]; then
    echo "live capture skipped: AF_PACKET needs root (run 'sudo make demo', or grant"
    echo "  cap_net_raw,cap_net_admin to the venv's python: see otus-capture-afpacket/README.md)"
    exit 0
fi
if ! command -v sipp >/dev/null 2>&1; then
    echo "live capture skipped: sipp is not installed (Debian: apt-get install sip-tester)"
    exit 0
fi
tmp=$(mktemp -d)
otus_pid=
uas_pid=
cleanup() {
    [ -n "$uas_pid" ] && kill "$uas_pid" 2>/dev/null
    [ -n "$otus_pid" ] && kill -INT "$otus_pid" 2>/dev/null && wait "$otus_pid"
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

echo "== live: otus run -i lo --bpf 'port 5060 or port 5061' --parser sip  (3 sipp calls on 127.0.0.1)"
"$otus" run -i lo --bpf 'port 5060 or port 5061' --parser sip --id live-demo &
otus_pid=$!
sleep 2  # the capture ring opens
sipp -sn uas -i 127.0.0.1 -p 5060 -m 3 -nostdin -timeout 20s >"$tmp/uas.log" 2>&1 &
uas_pid=$!
sleep 0.5
if ! sipp -sn uac 127.0.0.1:5060 -i 127.0.0.1 -p 5061 -m 3 -nostdin -timeout 20s \
    >"$tmp/uac.log" 2>&1; then
    echo "sipp uac failed:" >&2
    tail -n 30 "$tmp/uac.log" >&2
fi
wait "$uas_pid" 2>/dev/null
uas_pid=
sleep 1  # the last records reach the console
kill -INT "$otus_pid"
wait "$otus_pid"
status=$?
otus_pid=
# 130 is "interrupted": the SIGINT above, the normal end of a live capture.
[ "$status" = 130 ] && status=0
exit "$status"
