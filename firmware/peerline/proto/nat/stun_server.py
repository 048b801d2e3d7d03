"""Answering STUN Binding requests: a supernode reflects addresses for anyone (RFC 8489 §6.3).

A NAT client learns its mapping from any supernode this way, with standard tools too, and later
connectivity checks reuse it. Two limits keep the phone from being abused as a reflector: an
answer is never larger than the request (a spoofed source gains nothing: our own client pads its
requests so answers fit), and each source address gets a few answers per second.
"""

from collections import OrderedDict
from dataclasses import asdict, dataclass

from peerline.errors import DecodeError
from peerline.types import Addr
from peerline.wire.stun import BINDING_REQUEST, decode_stun, encode_binding_success

PER_SOURCE_PER_S = 5.0
BURST = 10.0
MAX_SOURCES = 4096


@dataclass(slots=True)
class StunServerCounters:
    answered: int = 0
    dropped_malformed: int = 0
    dropped_too_small: int = 0
    "Requests smaller than the answer would be (no amplification)."
    dropped_rate_limited: int = 0
    dropped_change_request: int = 0
    "RFC 5780 CHANGE-REQUEST needs a second address, which a phone does not have."

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class StunServer:
    def __init__(self) -> None:
        self._out: list[tuple[bytes, Addr]] = []
        self._rates: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self.counters = StunServerCounters()

    def receive_datagram(self, data: bytes, addr: Addr, *, now: float) -> None:
        c = self.counters
        try:
            msg = decode_stun(data)
        except DecodeError:
            c.dropped_malformed += 1
            return
        if msg.msg_type != BINDING_REQUEST or msg.unknown_required:
            c.dropped_malformed += 1
            return
        if msg.change:
            c.dropped_change_request += 1  # answering from where it was asked would mislead
            return
        answer = encode_binding_success(msg.txid, addr)
        if len(answer) > len(data):
            c.dropped_too_small += 1
            return
        if not self._rate_ok(addr[0], now):
            c.dropped_rate_limited += 1
            return
        c.answered += 1
        self._out.append((answer, addr))

    def _rate_ok(self, host: str, now: float) -> bool:
        tokens, last = self._rates.pop(host, (BURST, now))
        tokens = min(BURST, tokens + (now - last) * PER_SOURCE_PER_S)
        ok = tokens >= 1.0
        self._rates[host] = (tokens - 1.0 if ok else tokens, now)
        if len(self._rates) > MAX_SOURCES:
            self._rates.popitem(last=False)
        return ok

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]:
        out, self._out = self._out, []
        return out
