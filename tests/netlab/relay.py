#!/usr/bin/env python3
"""Delay/jitter relay: copy Ethernet frames between two interfaces after a delay.

The kernel here has no netem qdisc, so ``Lab.delay`` puts this relay on a node's switch port:
the port leaves the bridge and the relay copies every frame between it and a veth that is on
the bridge. Each frame waits ``delay_ms`` plus a uniform draw from +-``jitter_ms`` (never
below zero); with jitter, frames may be reordered, as on a real path. Usage (inside the
switch namespace): ``relay.py PORT_A PORT_B --delay-ms 40 --jitter-ms 10 [--seed N]``; prints
``ready`` once both packet sockets are open and runs until killed.

veth hands over locally sent packets with their checksums left to "hardware"
(``TP_STATUS_CSUMNOTREADY``); such frames get their IPv4 UDP/TCP checksum completed here
before they are sent on, or the receiver would drop them. Frames larger than the interface
MTU (GSO) are dropped and counted; the lab's traffic of interest is UDP.
"""

from __future__ import annotations

import argparse
import heapq
import random
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_OUTGOING = 4
TP_STATUS_CSUMNOTREADY = 0x8
AUXDATA = struct.Struct("=IIIHHHH")
SO_RCVBUFFORCE = 33  # Linux; not in the socket module


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def complete_checksum(frame: bytes) -> bytes:
    """Recompute the UDP or TCP checksum of an IPv4 frame (others are returned as they are)."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return frame
    ihl = (frame[14] & 0x0F) * 4
    proto = frame[23]
    total_len = struct.unpack("!H", frame[16:18])[0]
    l4 = 14 + ihl
    end = 14 + total_len
    offset = {17: 6, 6: 16}.get(proto)
    if offset is None or end > len(frame) or end - l4 < offset + 2:
        return frame
    segment = bytearray(frame[l4:end])
    segment[offset : offset + 2] = b"\0\0"
    pseudo = frame[26:34] + struct.pack("!BBH", 0, proto, len(segment))
    checksum = 0xFFFF - _sum16(pseudo + bytes(segment))
    if proto == 17 and checksum == 0:
        checksum = 0xFFFF
    segment[offset : offset + 2] = struct.pack("!H", checksum)
    return frame[:l4] + bytes(segment) + frame[end:]


def open_port(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 4 << 20)  # bursts wait, not drop
    sock.bind((ifname, 0))
    sock.setblocking(False)
    return sock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port_a")
    parser.add_argument("port_b")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    a, b = open_port(args.port_a), open_port(args.port_b)
    other = {a: b, b: a}
    queue: list[tuple[float, int, socket.socket, bytes]] = []
    seq = 0
    dropped = 0
    print("ready", flush=True)
    while True:
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, out, frame = heapq.heappop(queue)
            try:
                out.send(frame)
            except OSError:  # too large (GSO) or the peer went away
                dropped += 1
        timeout = max(0.0, queue[0][0] - now) if queue else None
        readable, _, _ = select.select([a, b], [], [], timeout)
        for sock in readable:
            while True:
                try:
                    frame, ancdata, _, addr = sock.recvmsg(65535, socket.CMSG_SPACE(AUXDATA.size))
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue
                for level, kind, data in ancdata:
                    if level == SOL_PACKET and kind == PACKET_AUXDATA:
                        status = AUXDATA.unpack_from(data)[0]
                        if status & TP_STATUS_CSUMNOTREADY:
                            frame = complete_checksum(frame)
                wait = args.delay_ms + rng.uniform(-args.jitter_ms, args.jitter_ms)
                seq += 1
                due = time.monotonic() + max(0.0, wait) / 1000.0
                heapq.heappush(queue, (due, seq, other[sock], frame))


if __name__ == "__main__":
    raise SystemExit(main())
