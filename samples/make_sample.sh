#!/bin/sh
# Re-make samples/sip-calls.pcap: real sipp calls between two network namespaces joined by a
# veth pair with a 576-byte MTU (so the large UDP INVITEs fragment), recorded by tcpdump on the
# UAS side. Two calls over UDP, then two over TCP. Needs root, iproute2, sipp, tcpdump.
#   sudo samples/make_sample.sh [OUTPUT.pcap]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/sip-calls.pcap}
ns_a=otus-sample-a-$$
ns_b=otus-sample-b-$$
if_a=osa$$
if_b=osb$$
ip_a=10.250.0.1
ip_b=10.250.0.2
tmp=$(mktemp -d)
dump=

cleanup() {
    [ -n "$dump" ] && kill -INT "$dump" 2>/dev/null && wait "$dump" 2>/dev/null || true
    ip netns del "$ns_a" 2>/dev/null || true
    ip netns del "$ns_b" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

ip netns add "$ns_a"
ip netns add "$ns_b"
ip link add "$if_a" netns "$ns_a" mtu 576 type veth peer name "$if_b" netns "$ns_b" mtu 576
for side in "$ns_a $if_a $ip_a" "$ns_b $if_b $ip_b"; do
    set -- $side
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$1" link set lo up
    ip -n "$1" addr add "$3/24" dev "$2"
    ip -n "$1" link set "$2" up
done

ip netns exec "$ns_b" tcpdump -i "$if_b" -U --immediate-mode -s 0 -w "$tmp/calls.pcap" ip 2>"$tmp/tcpdump.log" &
dump=$!
until grep -q listening "$tmp/tcpdump.log"; do sleep 0.1; done

fail() {  # $1: uac | uas, $2: transport
    echo "sipp $1 failed over $2:" >&2
    tail -n 40 "$tmp/$1-$2.err" "$tmp/$1.log" >&2 2>/dev/null || true
    exit 1
}

calls() {  # $1: sipp transport (u1 | t1)
    ip netns exec "$ns_b" sipp -sf "$here/sipp/uas.xml" -i "$ip_b" -p 5060 -t "$1" -m 2 \
        -nostdin -timeout 20s -trace_err -error_file "$tmp/uas-$1.err" >"$tmp/uas.log" 2>&1 &
    uas=$!
    sleep 0.5
    ip netns exec "$ns_a" sipp -sf "$here/sipp/uac.xml" "$ip_b:5060" -i "$ip_a" -p 5060 \
        -t "$1" -m 2 -l 1 -s bob -nostdin -timeout 20s -trace_err -error_file "$tmp/uac-$1.err" >"$tmp/uac.log" 2>&1 || fail uac "$1"
    # The UAC succeeding means every message went over the wire; over TCP the UAS counts its
    # calls as failed when the UAC closes the connection first, so its status is not used.
    wait "$uas" || true
}
calls u1
calls t1
sleep 0.5
kill -INT "$dump"
wait "$dump" || true
dump=
cp "$tmp/calls.pcap" "$out"
echo "wrote $out ($(wc -c <"$out") bytes)"
