#!/usr/bin/env bash
# Regenerates the real-exporter captures in tests/data and the tshark truth for each.
#
#   bash tests/data/generate.sh            # everything
#   bash tests/data/generate.sh softflowd_v9 pmacct_sflow   # only these captures
#
# Needs (Debian): softflowd pmacct nfdump tshark tcpdump faketime, python3 with scapy.
# Runs as root (tcpdump on lo). Talks only to 127.0.0.1, ports 29055-29066.
#
# Each capture: a UDP sink on 127.0.0.1:PORT (so the exporter's sends never meet ICMP port
# unreachable), tcpdump on lo for "udp and dst host 127.0.0.1 and dst port PORT", the
# exporter run against traffic.pcap, a 1 s grace for the last datagram, then tcpdump is
# stopped with SIGINT and truth.py makes <name>.truth.json from the capture with tshark.
#
# Determinism: traffic.pcap is byte-identical on every run (fixed seed and timestamps).
# softflowd runs with -a (use pcap time as its clock) and pmacctd under faketime, started at
# 2026-11-01T10:01:30Z (just after the trace), so export headers and uptime-relative times
# do not depend on today's date. What still varies between runs: capture arrival times,
# pmacct's sFlow sampling (random 1-in-4), PIDs carried as IPFIX meteringProcessId, and the
# sub-second part of pmacct's header clock.
set -euo pipefail
export TZ=UTC LC_ALL=C

DATA="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="$(mktemp -d /tmp/flowlens-gen.XXXXXX)"
FAKE_START="2026-11-01 10:01:30"
PIDS=()

cleanup() {
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

need() { command -v "$1" >/dev/null || { echo "generate.sh: '$1' is not installed ($2)" >&2; exit 1; }; }
need softflowd "apt-get install softflowd"
need pmacctd "apt-get install pmacct"
need nfpcapd "apt-get install nfdump"
need nfreplay "apt-get install nfdump"
need tshark "apt-get install tshark"
need tcpdump "apt-get install tcpdump"
need python3 "python3 with scapy: pip install scapy"
if command -v faketime >/dev/null; then
    FAKE=(faketime "$FAKE_START")
else
    echo "generate.sh: faketime not installed (apt-get install faketime); pmacct headers will use" \
         "the real clock and v5 uptime-relative times only decode while now - 2026-11-01 < 24.8 days" >&2
    FAKE=()
fi

SOFTFLOWD_V="$(softflowd -h 2>&1 | sed -n 's/.*softflowd version \([^.]*\.[^.]*\.[^. ]*\).*/\1/p')"
PMACCT_V="$(pmacctd -V 2>&1 | sed -n 's/.*pmacctd \([^ ]*\).*/\1/p' | head -1)"
NFDUMP_V="$(nfreplay -V 2>&1 | sed -n 's/.*Version: \([^ ]*\).*/\1/p')"

WANT=("$@")
wanted() {
    [ ${#WANT[@]} -eq 0 ] && return 0
    local w
    for w in "${WANT[@]}"; do [ "$w" = "$1" ] && return 0; done
    return 1
}

python3 "$DATA/gen_traffic.py" "$DATA/traffic.pcap"
cp "$DATA/traffic.pcap" "$WORK/traffic.pcap"
cd "$WORK"   # exporters read the relative path "traffic.pcap" (softflowd copies it into IF_NAME)

# capture NAME PORT PROTOCOL EXPORTER_DESCRIPTION -- COMMAND...
capture() {
    local name=$1 port=$2 proto=$3 desc=$4
    shift 5
    wanted "$name" || return 0
    echo "== $name (udp/$port): $*" >&2
    python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('127.0.0.1', $port))
while True:
    s.recv(65535)
" &
    local sink=$!
    PIDS+=("$sink")
    tcpdump -i lo -n -U -Z root -w "$WORK/$name.pcap" "udp and dst host 127.0.0.1 and dst port $port" \
        2>"$WORK/$name.tcpdump.log" &
    local tcpd=$!
    PIDS+=("$tcpd")
    for _ in $(seq 50); do
        grep -q "listening on" "$WORK/$name.tcpdump.log" 2>/dev/null && break
        sleep 0.1
    done
    sleep 0.5
    if ! "$@" >"$WORK/$name.exporter.log" 2>&1; then
        echo "generate.sh: $name: exporter failed:" >&2
        cat "$WORK/$name.exporter.log" >&2
        exit 1
    fi
    sleep 1.2
    kill -INT "$tcpd"
    wait "$tcpd" || true
    kill "$sink"
    wait "$sink" 2>/dev/null || true
    cp "$WORK/$name.pcap" "$DATA/$name.pcap"
    python3 "$DATA/truth.py" "$DATA/$name.pcap" --port "$port" --protocol "$proto" \
        --exporter "$desc" -o "$DATA/$name.truth.json"
}

# ---- softflowd --------------------------------------------------------------------------------
sf() { # name port proto extra-args...
    local name=$1 port=$2 proto=$3
    shift 3
    local cmd=(softflowd -r traffic.pcap -n "127.0.0.1:$port" "$@" -c none -d -a -p "$WORK/softflowd.pid")
    capture "$name" "$port" "$proto" "softflowd $SOFTFLOWD_V: ${cmd[*]/$WORK\//}" -- "${cmd[@]}"
}
sf softflowd_v5 29055 netflow_v5 -v 5
sf softflowd_v9 29056 netflow_v9 -v 9
sf softflowd_ipfix 29057 ipfix -v 10
sf softflowd_ipfix_milli 29058 ipfix -v 10 -A milli
sf softflowd_ipfix_biflow 29059 ipfix -v 10 -b

# ---- pmacctd (nfprobe / sfprobe plugins) --------------------------------------------------------
pm() { # name port proto config-lines...
    local name=$1 port=$2 proto=$3
    shift 3
    {
        echo "daemonize: false"
        echo "pcap_savefile: traffic.pcap"
        printf '%s\n' "$@"
    } >"$WORK/$name.conf"
    local settings
    settings="$(grep -v '^daemonize\|^pcap_savefile:' "$WORK/$name.conf" | paste -sd ';' | sed 's/;/; /g')"
    capture "$name" "$port" "$proto" "pmacctd $PMACCT_V (faketime '$FAKE_START'): $settings" -- \
        timeout 60 "${FAKE[@]}" pmacctd -f "$WORK/$name.conf"
}
NFPROBE_TIMEOUTS="nfprobe_timeouts: tcp=5:tcp.rst=5:tcp.fin=5:udp=5:icmp=5:general=5:maxlife=60:expint=1"
pm pmacct_v5 29060 netflow_v5 "plugins: nfprobe" "nfprobe_receiver: 127.0.0.1:29060" \
    "nfprobe_version: 5" "$NFPROBE_TIMEOUTS"
pm pmacct_v9 29061 netflow_v9 "plugins: nfprobe" "nfprobe_receiver: 127.0.0.1:29061" \
    "nfprobe_version: 9" "$NFPROBE_TIMEOUTS"
pm pmacct_ipfix 29062 ipfix "plugins: nfprobe" "nfprobe_receiver: 127.0.0.1:29062" \
    "nfprobe_version: 10" "nfprobe_tstamp_usec: true" "$NFPROBE_TIMEOUTS"
pm pmacct_ipfix_msec 29063 ipfix "plugins: nfprobe" "nfprobe_receiver: 127.0.0.1:29063" \
    "nfprobe_version: 10" "$NFPROBE_TIMEOUTS"
# sfprobe polls interface counters from a wall-clock tick (every 20 s, first one at a random
# point); pcap_savefile_delay holds the replay back 21 s so that exactly one counter sample
# is due when the first packets arrive.
pm pmacct_sflow 29064 sflow "plugins: sfprobe" "sfprobe_receiver: 127.0.0.1:29064" \
    "sfprobe_agentip: 127.0.0.1" "sampling_rate: 4" "pcap_savefile_delay: 21"

# ---- nfdump: nfpcapd turns traffic.pcap into an nfcapd file, nfreplay sends it ------------------
if wanted nfreplay_v5 || wanted nfreplay_v9; then
    mkdir -p "$WORK/nfcapd"
    nfpcapd -r traffic.pcap -w "$WORK/nfcapd" -e 10,5 >"$WORK/nfpcapd.log" 2>&1
    NFFILE="$(ls "$WORK"/nfcapd/nfcapd.* | head -1)"
    nr() { # name port version
        local cmd=(nfreplay -H 127.0.0.1 -p "$2" -v "$3" -r "$NFFILE")
        capture "$1" "$2" "netflow_v$3" \
            "nfdump $NFDUMP_V: nfpcapd -r traffic.pcap -w DIR -e 10,5; nfreplay -H 127.0.0.1 -p $2 -v $3 -r DIR/$(basename "$NFFILE")" \
            -- "${cmd[@]}"
    }
    nr nfreplay_v5 29065 5
    nr nfreplay_v9 29066 9
fi
# nfreplay_ipfix: nfdump 1.7.1's nfreplay rejects -v 10 ("Invalid netflow version: 10. Accept
# only 5 or 9!"), so there is no such capture.

echo "done: $(ls "$DATA"/*.pcap | wc -l) captures in $DATA ($(du -sh "$DATA" | cut -f1))" >&2
