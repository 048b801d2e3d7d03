"""NAT behaviour discovery (RFC 5780 §4.3-§4.4) over a ``StunClient``, sans-I/O.

Needs a STUN server with two addresses (it returns OTHER-ADDRESS and honours CHANGE-REQUEST,
as coturn does when it listens on two IPs). Filtering first: after one request to the
primary address, the server is asked to answer from its other IP and port, then from the other
port only; which answers get through tells the filtering (RFC 4787 §5). Mapping then: the same
socket asks the alternate IP (same port), then the alternate IP and port, and compares the
mapped addresses (endpoint-independent / address-dependent / address-and-port-dependent,
RFC 4787 §4.1). The two series run one
request at a time, so a lost answer is a timeout of its own test, never another test's.

Usage: ``start(server, now)``; hand every ``BindingResult``/``BindingFailed`` the StunClient
emits to ``on_stun``; when ``result`` is set the classification is done.
"""

from dataclasses import dataclass
from enum import Enum

from peerline.types import Addr
from peerline.wire.stun import CHANGE_IP, CHANGE_PORT

from .stun_client import BindingFailed, BindingResult, StunClient


class Mapping(Enum):
    NONE = "none"
    "No NAT: the server sees the phone's own address."
    ENDPOINT_INDEPENDENT = "endpoint-independent"
    ADDRESS_DEPENDENT = "address-dependent"
    ADDRESS_AND_PORT_DEPENDENT = "address-and-port-dependent"
    UNKNOWN = "unknown"


class Filtering(Enum):
    ENDPOINT_INDEPENDENT = "endpoint-independent"
    ADDRESS_DEPENDENT = "address-dependent"
    ADDRESS_AND_PORT_DEPENDENT = "address-and-port-dependent"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class NatBehaviour:
    mapping: Mapping
    filtering: Filtering
    mapped: Addr | None
    "The reflexive address from the first test."
    reason: str = ""
    "Why something is UNKNOWN (no answer, server without a second address)."

    def as_dict(self) -> dict[str, object]:
        return {
            "mapping": self.mapping.value,
            "filtering": self.filtering.value,
            "mapped": list(self.mapped) if self.mapped else None,
            "reason": self.reason,
        }


class NatClassifier:
    def __init__(self, stun: StunClient, *, local: set[Addr]) -> None:
        self._stun = stun
        self._local = local
        self._server: Addr | None = None
        self._step = ""
        self._txid = b""
        self._m1: Addr | None = None
        self._m2: Addr | None = None
        self._other: Addr | None = None
        self._mapping = Mapping.UNKNOWN
        self._filtering = Filtering.UNKNOWN
        self.result: NatBehaviour | None = None

    def start(self, server: Addr, *, now: float) -> None:
        self._server = server
        self._ask("map1", server, now)

    def _ask(self, step: str, to: Addr, now: float, change: int = 0) -> None:
        self._step = step
        self._txid = self._stun.request(to, now=now, change=change)

    def on_stun(self, event: BindingResult | BindingFailed, *, now: float) -> NatBehaviour | None:
        """Feed a STUN client event (others' transactions are ignored); the result once done."""
        if self.result is None and event.txid == self._txid:
            self._step_on(event, now)
        return self.result

    def _step_on(self, event: BindingResult | BindingFailed, now: float) -> None:
        # Filtering is tested before mapping: the phone has one socket, and the mapping tests
        # send to the server's second address, which would open an address-dependent filter
        # to it and make the NAT look endpoint-independent.
        ok = isinstance(event, BindingResult)
        step, server = self._step, self._server
        assert server is not None
        if step == "map1":
            if not isinstance(event, BindingResult):
                self._finish(Filtering.UNKNOWN, "the STUN server did not answer")
                return
            self._m1, self._other = event.mapped, event.other
            if event.mapped in self._local:
                self._mapping = Mapping.NONE
            if self._other is None or self._other[0] == server[0]:
                self._finish(Filtering.UNKNOWN, "the STUN server has no second address")
                return
            self._ask("filter1", server, now, CHANGE_IP | CHANGE_PORT)
        elif step == "filter1":
            if ok:
                self._mapping_tests(Filtering.ENDPOINT_INDEPENDENT, now)
            else:
                self._ask("filter2", server, now, CHANGE_PORT)
        elif step == "filter2":
            filtering = Filtering.ADDRESS_DEPENDENT if ok else Filtering.ADDRESS_AND_PORT_DEPENDENT
            self._mapping_tests(filtering, now)
        elif step == "map2":
            if not isinstance(event, BindingResult) or self._other is None:
                self._mapping = Mapping.UNKNOWN
            elif event.mapped == self._m1:
                self._mapping = Mapping.ENDPOINT_INDEPENDENT
            else:
                self._m2 = event.mapped
                self._ask("map3", self._other, now)
                return
            self._finish(self._filtering)
        elif step == "map3":
            if not isinstance(event, BindingResult):
                self._mapping = Mapping.UNKNOWN
            elif event.mapped == self._m2:
                self._mapping = Mapping.ADDRESS_DEPENDENT
            else:
                self._mapping = Mapping.ADDRESS_AND_PORT_DEPENDENT
            self._finish(self._filtering)

    def _mapping_tests(self, filtering: Filtering, now: float) -> None:
        self._filtering = filtering
        if self._mapping is Mapping.NONE or self._other is None or self._server is None:
            self._finish(filtering)
        else:
            self._ask("map2", (self._other[0], self._server[1]), now)

    def _finish(self, filtering: Filtering, reason: str = "") -> None:
        self.result = NatBehaviour(
            mapping=self._mapping, filtering=filtering, mapped=self._m1, reason=reason
        )
