#!/usr/bin/env python3
"""Writes tests/data/traffic.pcap: a small, deterministic synthetic network trace that the
real exporters (softflowd, pmacctd, nfpcapd) turn into flow exports.

Fixed seed and fixed timestamps (starting 2026-11-01T10:00:00Z, spread over ~100 s), so
re-running this script produces a byte-identical file.

Contents (one "conversation" = two unidirectional flows):
  * 20 IPv4 TCP conversations (SYN/SYN-ACK/ACK, data both ways, FIN/ACK both ways) to
    web 80/443, postgres 5432, redis 6379, ssh 22
  * 8 IPv4 UDP DNS query/answer pairs (port 53)
  * 4 IPv4 ICMP echo request/reply exchanges (several pings each)
  * 3 IPv6 TCP conversations and 2 IPv6 UDP DNS pairs
  * 2 IPv4 TCP conversations whose frames carry an 802.1Q VLAN tag (VLAN 100 and 200)
"""

import os
import random
import sys

from scapy.all import (  # type: ignore
    DNS,
    DNSQR,
    DNSRR,
    ICMP,
    IP,
    TCP,
    UDP,
    Dot1Q,
    Ether,
    IPv6,
    Raw,
    wrpcap,
)

T0 = 1793527200.0  # 2026-11-01T10:00:00Z
SEED = 20261101
DURATION = 100.0

rng = random.Random(SEED)
packets = []  # (time, frame)

MAC_C = "02:00:00:00:00:01"
MAC_S = "02:00:00:00:00:02"


def emit(t, l3, vlan=None, fwd=True):
    src, dst = (MAC_C, MAC_S) if fwd else (MAC_S, MAC_C)
    eth = Ether(src=src, dst=dst)
    frame = eth / Dot1Q(vlan=vlan) / l3 if vlan is not None else eth / l3
    packets.append((round(t, 6), frame))


def payload(n):
    return Raw(load=bytes(rng.getrandbits(8) for _ in range(n)))


def tcp_conv(ipc, ips, cport, sport, start, dur, exchanges, v6=False, vlan=None):
    """A complete TCP conversation; returns nothing, appends frames."""
    mk = (lambda s, d: IPv6(src=s, dst=d, hlim=64)) if v6 else (lambda s, d: IP(src=s, dst=d, ttl=64))
    cseq = rng.randrange(1 << 32)
    sseq = rng.randrange(1 << 32)
    steps = 3 + 2 * exchanges + 3
    dt = dur / steps
    t = start

    def c2s(flags, data=b"", tt=None):
        nonlocal cseq
        p = mk(ipc, ips) / TCP(sport=cport, dport=sport, flags=flags, seq=cseq, ack=sseq, window=64240)
        if data:
            p = p / Raw(load=data)
        emit(tt, p, vlan, True)
        cseq = (cseq + len(data) + (1 if ("S" in flags or "F" in flags) else 0)) % (1 << 32)

    def s2c(flags, data=b"", tt=None):
        nonlocal sseq
        p = mk(ips, ipc) / TCP(sport=sport, dport=cport, flags=flags, seq=sseq, ack=cseq, window=65160)
        if data:
            p = p / Raw(load=data)
        emit(tt, p, vlan, False)
        sseq = (sseq + len(data) + (1 if ("S" in flags or "F" in flags) else 0)) % (1 << 32)

    c2s("S", tt=t)
    t += dt
    s2c("SA", tt=t)
    t += dt
    c2s("A", tt=t)
    t += dt
    for _ in range(exchanges):
        req = bytes(rng.getrandbits(8) for _ in range(rng.randrange(40, 300)))
        rsp = bytes(rng.getrandbits(8) for _ in range(rng.randrange(100, 900)))
        c2s("PA", req, tt=t)
        t += dt
        s2c("PA", rsp, tt=t)
        t += dt
    c2s("FA", tt=t)
    t += dt
    s2c("FA", tt=t)
    t += dt
    c2s("A", tt=t)


def dns(ipc, ips, cport, start, name, v6=False):
    mk = (lambda s, d: IPv6(src=s, dst=d, hlim=64)) if v6 else (lambda s, d: IP(src=s, dst=d, ttl=64))
    qid = rng.randrange(1 << 16)
    qtype = "AAAA" if v6 else "A"
    q = mk(ipc, ips) / UDP(sport=cport, dport=53) / DNS(id=qid, rd=1, qd=DNSQR(qname=name, qtype=qtype))
    rdata = "2001:db8:feed::%x" % rng.randrange(1, 0xFFFF) if v6 else "192.0.2.%d" % rng.randrange(1, 254)
    a = mk(ips, ipc) / UDP(sport=53, dport=cport) / DNS(
        id=qid, qr=1, aa=0, rd=1, ra=1, qd=DNSQR(qname=name, qtype=qtype),
        an=DNSRR(rrname=name, type=qtype, ttl=300, rdata=rdata))
    emit(start, q, None, True)
    emit(start + rng.uniform(0.005, 0.05), a, None, False)


def pings(ipc, ips, start, count, ident):
    for i in range(count):
        t = start + i * 1.0
        data = bytes(range(56))
        emit(t, IP(src=ipc, dst=ips, ttl=64) / ICMP(type=8, code=0, id=ident, seq=i + 1) / Raw(load=data), None, True)
        emit(t + 0.0004 + rng.uniform(0, 0.002), IP(src=ips, dst=ipc, ttl=64) / ICMP(type=0, code=0, id=ident, seq=i + 1) / Raw(load=data), None, False)


# IPv4 TCP conversations
services = [("10.0.1.80", 80), ("10.0.1.80", 443), ("10.0.1.54", 5432), ("10.0.1.63", 6379), ("10.0.1.22", 22)]
for i in range(20):
    server, port = services[i % len(services)]
    client = "10.0.0.%d" % (10 + i)
    cport = 40000 + i * 7
    start = T0 + rng.uniform(0.0, DURATION - 30.0)
    dur = rng.uniform(0.5, 25.0)
    tcp_conv(client, server, cport, port, start, dur, rng.randrange(1, 6))

# IPv4 DNS
names = ["www.example.com.", "db.example.net.", "cache.example.org.", "ssh.example.com.",
         "api.example.com.", "cdn.example.net.", "mail.example.org.", "ntp.example.com."]
for i, name in enumerate(names):
    dns("10.0.0.%d" % (50 + i), "10.0.1.53", 50000 + i * 11, T0 + 2.0 + i * 11.3, name)

# ICMP echo
for i in range(4):
    pings("10.0.0.%d" % (70 + i), "10.0.1.%d" % (1 + i), T0 + 5.0 + i * 20.0, 3 + i, 0x100 + i)

# IPv6 TCP and DNS
v6_services = [("2001:db8:1::80", 443), ("2001:db8:1::54", 5432), ("2001:db8:1::22", 22)]
for i, (server, port) in enumerate(v6_services):
    tcp_conv("2001:db8::%x" % (0x10 + i), server, 41000 + i * 3, port,
             T0 + 10.0 + i * 25.0, rng.uniform(1.0, 10.0), rng.randrange(1, 4), v6=True)
for i in range(2):
    dns("2001:db8::%x" % (0x50 + i), "2001:db8:1::53", 51000 + i, T0 + 30.0 + i * 30.0,
        "v6host%d.example.com." % i, v6=True)

# VLAN-tagged TCP
tcp_conv("10.0.2.10", "10.0.3.80", 42000, 80, T0 + 15.0, 3.0, 2, vlan=100)
tcp_conv("10.0.2.11", "10.0.3.54", 42001, 5432, T0 + 45.0, 4.0, 2, vlan=200)

packets.sort(key=lambda p: p[0])
frames = []
for t, f in packets:
    f.time = t
    frames.append(f)

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "traffic.pcap")
wrpcap(out, frames)
print("wrote %s: %d frames, %.1f s" % (out, len(frames), packets[-1][0] - packets[0][0]))
