#!/usr/bin/env python3
"""Turns what tshark decodes from one exporter capture into `<capture>.truth.json`.

    truth.py CAPTURE.pcap --port P --protocol netflow_v5|netflow_v9|ipfix|sflow \
             --exporter "softflowd 1.1.0 -v 9 ..." [-o OUT.json]

tshark (cflow / sflow dissectors, forced onto udp.port==P with -d) does all the parsing; its
PDML output is read here because PDML keeps every field in order together with its raw
bytes (tshark's JSON output repeats keys such as cflow.octets for RFC 5103 reverse IEs, which
JSON readers collapse).  This script only picks values out of tshark's tree and applies the
time rules below; it never parses NetFlow/IPFIX/sFlow bytes itself, with one exception:
16-byte flowStart/EndMicroseconds (pmacct), which tshark shows as nonsense (see README).

Time rules (all results are absolute Unix milliseconds):
  * NetFlow v5/v9 sysUptime-relative times (tshark "Duration" without suffix, or "(switched)"
    in v9):  abs = unix_secs*1000 [+ unix_nsecs//1e6 in v5] - s32(sysuptime_ms - rec_ms)
  * IPFIX 21/22 ("(switched)" in v10): abs = systemInitTimeMilliseconds (IE 160, from the
    last options record seen) + rec_ms
  * 150/151 seconds, 152/153 ms: as sent.  154/155 (and 156/157): 8-byte NTP timestamps;
    16-byte values are taken as pmacct's struct timeval (u64 seconds, u64 microseconds).
  * sFlow: first = last = the capture frame's arrival time (frame.time_epoch), floored to ms.
"""

import argparse
import json
import subprocess
import sys
import xml.etree.ElementTree as ET

NTP_EPOCH_OFFSET = 2208988800


def s32(x):
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x


def epoch_ms(text):
    """'1795390530.587361000' -> 1795390530587 without float rounding."""
    secs, _, frac = text.partition(".")
    return int(secs) * 1000 + int((frac + "000")[:3])


def walk(el):
    """Depth-first, document order, over <field> and <proto> elements."""
    for child in el:
        yield child
        yield from walk(child)


def fields_named(el, name):
    return [f for f in walk(el) if f.get("name") == name]


def first_field(el, name):
    for f in walk(el):
        if f.get("name") == name:
            return f
    return None


def is_reverse(f):
    return "(Reverse Type" in (f.get("showname") or "")


def hexint(f):
    return int(f.get("value"), 16)


def run_tshark(pcap, port, dissector):
    cmd = ["tshark", "-n", "-r", pcap, "-d", "udp.port==%d,%s" % (port, dissector), "-T", "pdml"]
    out = subprocess.run(cmd, check=True, capture_output=True).stdout
    return ET.fromstring(out)


def packet_protos(pkt):
    return {p.get("name"): p for p in pkt.findall("proto")}


# --------------------------------------------------------------------------------------------
# NetFlow v5 / v9 / IPFIX


def time_value(f, kind, hdr, state):
    """One start/end field -> absolute ms.  kind is the suffix tshark puts on 'Duration'."""
    size = int(f.get("size"))
    v = f.get("value")
    if kind in ("", "switched") and hdr["version"] in (5, 9):
        rel = int(v, 16)
        base = hdr["unix_secs"] * 1000 + (hdr["unix_nsecs"] // 1_000_000 if hdr["version"] == 5 else 0)
        return base - s32(hdr["sysuptime_ms"] - rel)
    if kind == "switched":  # IPFIX flowStart/EndSysUpTime
        if state.get("system_init_ms") is None:
            raise SystemExit("IPFIX sysUpTime-relative time but no systemInitTimeMilliseconds seen")
        return state["system_init_ms"] + int(v, 16)
    if kind == "seconds":
        return int(v, 16) * 1000
    if kind == "milliseconds":
        return int(v, 16)
    if kind in ("microseconds", "nanoseconds"):
        if size == 8:  # NTP
            secs = int(v[:8], 16) - NTP_EPOCH_OFFSET
            frac = int(v[8:], 16)
            return secs * 1000 + (frac * 1000 >> 32)
        if size == 16:  # pmacct: struct timeval {u64 tv_sec; u64 tv_usec}
            return int(v[:16], 16) * 1000 + int(v[16:], 16) // 1000
    raise SystemExit("unhandled time field %r kind %r size %d" % (f.get("name"), kind, size))


def flow_record(flow, hdr, state):
    """One tshark 'Flow N' element -> dict of forward and reverse values."""
    fwd, rev = {}, {}
    for f in walk(flow):
        name = f.get("name")
        if not name or not name.startswith("cflow."):
            continue
        tgt = rev if is_reverse(f) else fwd
        if name in ("cflow.timestart", "cflow.abstimestart", "cflow.timeend", "cflow.abstimeend"):
            parent_kind = f.get("_kind", "")
            key = "first" if "start" in name else "last"
            tgt[key] = time_value(f, parent_kind, hdr, state)
        elif name in ("cflow.srcaddr", "cflow.srcaddrv6"):
            tgt["src"] = f.get("show")
        elif name in ("cflow.dstaddr", "cflow.dstaddrv6"):
            tgt["dst"] = f.get("show")
        elif name in ("cflow.srcport", "cflow.dstport", "cflow.protocol", "cflow.octets", "cflow.packets"):
            tgt.setdefault(name[6:], int(f.get("show"), 0))
        elif name in ("cflow.icmp_type_code_ipv4", "cflow.icmp_type_code_ipv6"):
            tgt["icmp"] = hexint(f)
    return fwd, rev


def mark_time_kinds(root):
    """Tag every start/end time field with the suffix of its enclosing 'Duration' field."""
    for td in (f for f in walk(root) if f.get("name") == "cflow.timedelta"):
        sn = td.get("showname") or ""
        kind = sn[sn.rindex("(") + 1:-1] if sn.endswith(")") else ""
        for c in td:
            c.set("_kind", kind)


def cflow_truth(root, args):
    mark_time_kinds(root)
    records, options, datagrams = [], [], []
    templates = {"data": 0, "options": 0}
    state = {"system_init_ms": None, "sampling_interval": None}
    packets = root.findall("packet")
    for i, pkt in enumerate(packets):
        protos = packet_protos(pkt)
        cf = protos.get("cflow")
        if cf is None:
            raise SystemExit("packet %d: tshark found no cflow layer" % i)

        def hv(name, default=None):
            f = first_field(cf, name)
            return default if f is None else int(f.get("show"))

        hdr = {
            "version": hv("cflow.version"),
            "sysuptime_ms": hexint(first_field(cf, "cflow.sysuptime")) if first_field(cf, "cflow.sysuptime") is not None else None,
            "unix_secs": hv("cflow.unix_secs", hv("cflow.exporttime")),
            "unix_nsecs": hv("cflow.unix_nsecs", 0),
        }
        v5_rate = None
        sr = first_field(cf, "cflow.samplerate")
        if sr is not None and int(sr.get("show"), 0) > 0:
            v5_rate = int(sr.get("show"), 0)
        n_flows = n_tmpl = 0
        items = []
        for fs in cf:
            if fs.tag != "field" or fs.get("name") != "":
                continue
            if (fs.get("show") or "").startswith("pdu "):  # NetFlow v5 records sit directly under cflow
                items.append(fs)
            else:
                items.extend(fs)
        if True:
            for item in items:
                show = item.get("show") or ""
                if item.tag != "field" or item.get("name") != "":
                    continue
                if show.startswith("Template ("):
                    templates["data"] += 1
                    n_tmpl += 1
                elif show.startswith("Options Template ("):
                    templates["options"] += 1
                    n_tmpl += 1
                elif show.startswith("Flow ") or show.startswith("pdu "):
                    if first_field(item, "cflow.srcaddr") is None and first_field(item, "cflow.srcaddrv6") is None:
                        opt = {"packet": i}
                        f = first_field(item, "cflow.sys_init_time")
                        if f is not None:
                            opt["system_init_ms"] = hexint(f)
                            state["system_init_ms"] = opt["system_init_ms"]
                        for nm in ("cflow.sampling_interval", "cflow.sampling_packet_interval"):
                            f = first_field(item, nm)
                            if f is not None:
                                opt[nm[6:]] = int(f.get("show"))
                                state["sampling_interval"] = int(f.get("show"))
                        for nm in ("cflow.sampling_packet_space", "cflow.sampling_algorithm", "cflow.selector_algorithm"):
                            f = first_field(item, nm)
                            if f is not None:
                                opt[nm[6:]] = int(f.get("show"))
                        options.append(opt)
                        continue
                    n_flows += 1
                    fwd, rev = flow_record(item, hdr, state)
                    rate = v5_rate or state["sampling_interval"] or 1
                    src_port = fwd.get("srcport", 0)
                    dst_port = fwd.get("dstport", fwd.get("icmp", 0))
                    if "dstport" not in fwd and "icmp" in fwd:
                        src_port = 0
                    base = {
                        "packet": i,
                        "src": fwd["src"], "dst": fwd["dst"],
                        "src_port": src_port, "dst_port": dst_port,
                        "proto": fwd.get("protocol", 0),
                        "bytes": fwd.get("octets", 0), "packets": fwd.get("packets", 0),
                        "first_ms": fwd.get("first"), "last_ms": fwd.get("last"),
                        "direction": "forward" if rev else "none",
                        "sampling_rate": rate,
                    }
                    if "icmp" in fwd and base["proto"] in (1, 58):  # extra, informational: IE 32/139 as sent
                        base["icmp_type_code"] = fwd["icmp"]
                    records.append(base)
                    if rev and rev.get("packets", 0) > 0:
                        records.append({
                            "packet": i,
                            "src": fwd["dst"], "dst": fwd["src"],
                            "src_port": dst_port, "dst_port": src_port,
                            "proto": fwd.get("protocol", 0),
                            "bytes": rev.get("octets", 0), "packets": rev.get("packets", 0),
                            "first_ms": rev.get("first", fwd.get("first")),
                            "last_ms": rev.get("last", fwd.get("last")),
                            "direction": "reverse",
                            "sampling_rate": rate,
                        })
        d = {"packet": i, "version": hdr["version"], "sequence": hv("cflow.sequence"),
             "flow_records": n_flows, "template_records": n_tmpl}
        if hdr["version"] in (5, 9):
            d["header_count"] = hv("cflow.count")
            d["sysuptime_ms"] = hdr["sysuptime_ms"]
            d["unix_secs"] = hdr["unix_secs"]
        else:
            d["export_time"] = hdr["unix_secs"]
        datagrams.append(d)
    return len(packets), records, [], templates, options, datagrams


# --------------------------------------------------------------------------------------------
# sFlow


def inner_packet(header_field):
    """src, dst, proto, src_port, dst_port from tshark's dissection of a sampled header."""
    src = dst = None
    proto = 0
    sport = dport = 0
    for p in walk(header_field):
        if p.tag != "proto":
            continue
        n = p.get("name")
        if n == "ip" and src is None:
            src = first_field(p, "ip.src").get("show")
            dst = first_field(p, "ip.dst").get("show")
            proto = int(first_field(p, "ip.proto").get("show"))
        elif n == "ipv6" and src is None:
            src = first_field(p, "ipv6.src").get("show")
            dst = first_field(p, "ipv6.dst").get("show")
            proto = int(first_field(p, "ipv6.nxt").get("show"))
        elif n in ("tcp", "udp") and src is not None:
            sport = int(first_field(p, n + ".srcport").get("show"))
            dport = int(first_field(p, n + ".dstport").get("show"))
            break
        elif n in ("icmp", "icmpv6") and src is not None:
            t = int(first_field(p, n + ".type").get("show"))
            c = int(first_field(p, n + ".code").get("show"))
            sport, dport = 0, (t << 8) | c
            break
    return src, dst, proto, sport, dport


def sflow_truth(root, args):
    records, counters, datagrams = [], [], []
    packets = root.findall("packet")
    for i, pkt in enumerate(packets):
        protos = packet_protos(pkt)
        sf = protos.get("sflow")
        if sf is None:
            raise SystemExit("packet %d: tshark found no sflow layer" % i)
        ts = epoch_ms(first_field(protos["frame"], "frame.time_epoch").get("show"))
        n_flow = n_ctr = 0
        for sample in sf:
            show = sample.get("show") or ""
            if sample.tag != "field" or sample.get("name") != "":
                continue
            if show.startswith("Flow sample") or show.startswith("Expanded flow sample"):
                n_flow += 1
                rate = int(first_field(sample, "sflow.flow_sample.sampling_rate").get("show"))
                hdr = None
                for rec in sample:
                    if rec.get("show") == "Raw packet header":
                        hdr = rec
                if hdr is None:
                    continue
                frame_len = int(first_field(hdr, "sflow_245.header.frame_length").get("show"))
                src, dst, proto, sport, dport = inner_packet(first_field(hdr, "sflow_245.header"))
                if src is None:
                    continue
                records.append({
                    "packet": i, "src": src, "dst": dst, "src_port": sport, "dst_port": dport,
                    "proto": proto, "bytes": frame_len * rate, "packets": rate,
                    "first_ms": ts, "last_ms": ts, "direction": "none", "sampling_rate": rate,
                })
            elif show.startswith("Counters sample") or show.startswith("Expanded counters sample"):
                n_ctr += 1
                for rec in sample:
                    if rec.get("show") != "Generic interface counters":
                        continue

                    def g(n):
                        return int(first_field(rec, "sflow_245." + n).get("show"))

                    counters.append({
                        "packet": i, "if_index": g("ifindex"),
                        "in_octets": g("ifinoct"), "out_octets": g("ifoutoct"),
                        "in_ucast": g("ifinpkt"), "out_ucast": g("ifoutpkt"),
                    })
        datagrams.append({
            "packet": i,
            "sequence": int(first_field(sf, "sflow_245.sequence_number").get("show")),
            "header_count": int(first_field(sf, "sflow_245.numsamples").get("show")),
            "flow_samples": n_flow, "counter_samples": n_ctr,
            "sysuptime_ms": int(first_field(sf, "sflow_245.sysuptime").get("value"), 16),
        })
    return len(packets), records, counters, {"data": 0, "options": 0}, [], datagrams


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("capture")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--protocol", required=True, choices=["netflow_v5", "netflow_v9", "ipfix", "sflow"])
    ap.add_argument("--exporter", required=True)
    ap.add_argument("-o", "--output")
    args = ap.parse_args()

    dissector = "sflow" if args.protocol == "sflow" else "cflow"
    root = run_tshark(args.capture, args.port, dissector)
    fn = sflow_truth if args.protocol == "sflow" else cflow_truth
    n, records, counters, templates, options, datagrams = fn(root, args)
    for r in records:
        if r["first_ms"] is None or r["last_ms"] is None:
            raise SystemExit("record without times: %r" % r)
    truth = {
        "capture": args.capture.rsplit("/", 1)[-1],
        "exporter": args.exporter,
        "protocol": args.protocol,
        "packets": n,
        "records": records,
        "counters": counters,
        "templates": templates,
        "options": options,
        "datagrams": datagrams,
    }
    text = json.dumps(truth, indent=1) + "\n"
    out = args.output or args.capture.rsplit(".pcap", 1)[0] + ".truth.json"
    with open(out, "w") as fh:
        fh.write(text)
    print("%s: %d datagrams, %d records, %d counters, templates %s" % (
        truth["capture"], n, len(records), len(counters), templates), file=sys.stderr)


if __name__ == "__main__":
    main()
