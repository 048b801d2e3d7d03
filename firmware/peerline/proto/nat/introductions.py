"""Introductions: hole punching through a relay, over the overlay (protocol.md §9.10.5).

All three parts, as a service registered on the phone's ``Overlay``: the caller asks up to two
of the callee's relays to introduce it (INTRODUCE, ``introduce``), sent once more with the
token a REFUSED carries; a relay passes a validated caller's introduction on to its client
(INTRODUCTION, to where the client's validated pings come from); a client takes introductions
only from its own relays and reports them (``IntroductionReceived``), and the caller hears
which relays passed it on (``IntroductionAccepted``). ``Traversal`` acts on both events. It
lives in ``proto.nat`` because it is NAT traversal; the overlay supplies the authenticated
request path and the relay and client tables it keeps anyway. ``proto.engine.Engine`` builds
one per phone.
"""

from dataclasses import asdict, dataclass

from peerline.proto.overlay.events import IntroductionAccepted, IntroductionReceived
from peerline.proto.overlay.overlay import Overlay
from peerline.proto.overlay.rpc import Reply
from peerline.proto.overlay.serving import Inbound
from peerline.types import Addr
from peerline.wire.overlay import (
    MAX_CANDIDATES,
    NO_TOKEN,
    Body,
    Contact,
    IntroAck,
    Introduce,
    Introduction,
    IntroStatus,
    Kind,
)

RELAYS_ASKED = 2
"""Relays of the callee's record a caller asks for an introduction."""


@dataclass(slots=True)
class IntroductionCounters:
    """Shown with the overlay's counters (``status``: ``overlay.counters``)."""

    introductions_sent: int = 0
    introductions_relayed: int = 0
    introductions_refused: int = 0
    "Introductions from a node that is not one of our relays (counted by the client)."

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True, eq=False)
class _Asked:
    """An INTRODUCE of ours: a DONE answer is reported for ``target``."""

    target: bytes
    resend: Introduce | None
    "Sent without a token: sent once more if the relay refuses it for that."


class Introductions:
    """See module docstring."""

    def __init__(self, overlay: Overlay) -> None:
        self.overlay = overlay
        self.counters = IntroductionCounters()
        overlay.register_request(Kind.INTRODUCE, self._on_introduce)
        overlay.register_request(Kind.INTRODUCTION, self._on_introduction)
        overlay.register_reply(Kind.INTRO_ACK, self._on_ack)

    # -- the caller ---------------------------------------------------------------------------
    def introduce(
        self,
        target: bytes,
        relays: tuple[Contact, ...],
        candidates: tuple[Addr, ...],
        *,
        now: float,
        initiation: bytes = b"",
    ) -> int:
        """Ask ``target``'s relays to tell it we are calling from ``candidates`` (hole punching:
        it will send towards us, opening its NAT, while we send towards it). Returns how many
        relays were asked."""
        overlay = self.overlay
        asked = 0
        for relay in relays[:RELAYS_ASKED]:
            if relay.public_key == overlay.public_key:
                continue
            token = overlay.token_for(relay.addr, now)
            body = Introduce(
                token=token,
                target=target,
                candidates=candidates[:MAX_CANDIDATES],
                initiation=initiation,
            )
            context = _Asked(target, body if token == NO_TOKEN else None)
            req = overlay.request(
                Kind.INTRODUCE, body, relay.public_key, relay.addr, now=now, context=context
            )
            if req is not None:
                asked += 1
                self.counters.introductions_sent += 1
        return asked

    def _on_ack(self, reply: Reply) -> None:
        req, body, token = reply.request, reply.body, reply.token
        asked = req.context
        if not isinstance(asked, _Asked) or not isinstance(body, IntroAck):
            return  # the answer to an INTRODUCTION we passed on: nothing to do
        if body.status is IntroStatus.DONE:
            self.overlay.add_event(IntroductionAccepted(target=asked.target, relay=reply.contact))
        elif body.status is IntroStatus.REFUSED and asked.resend is not None:
            # Refused for want of a token, which this very reply carries: ask once more.
            first = asked.resend
            again = Introduce(
                token=token,
                target=first.target,
                candidates=first.candidates,
                initiation=first.initiation,
            )
            if req.public_key is not None and token != NO_TOKEN:
                self.overlay.request(
                    Kind.INTRODUCE,
                    again,
                    req.public_key,
                    req.addr,
                    now=reply.now,
                    context=_Asked(again.target, None),
                )

    # -- the relay ----------------------------------------------------------------------------
    def _on_introduce(self, q: Inbound) -> tuple[Body, int] | None:
        """As a relay: pass a caller's introduction to our client (validated callers only:
        the client will send towards the addresses it names)."""
        body = q.body
        if not isinstance(body, Introduce):
            return None
        status = self._pass_on(q.header.sender, body, q.addr, q.validated, q.now)
        return IntroAck(status=status, token=q.token), 0

    def _pass_on(
        self, sender: bytes, body: Introduce, addr: Addr, validated: bool, now: float
    ) -> IntroStatus:
        if not validated:
            return IntroStatus.REFUSED
        client = self.overlay.client_addr(body.target, now)
        if client is None:
            return IntroStatus.NOT_MY_CLIENT
        candidates = (addr, *[c for c in body.candidates if c != addr])[:MAX_CANDIDATES]
        note = Introduction(
            token=NO_TOKEN, caller=sender, candidates=candidates, initiation=body.initiation
        )
        self.overlay.request(Kind.INTRODUCTION, note, body.target, client, now=now)
        self.counters.introductions_relayed += 1
        return IntroStatus.DONE

    # -- the client ---------------------------------------------------------------------------
    def _on_introduction(self, q: Inbound) -> tuple[Body, int] | None:
        """As a client: a caller is coming; only our own relays may say so."""
        body = q.body
        if not isinstance(body, Introduction):
            return None
        sender = q.header.sender
        if not any(relay.public_key == sender for relay in self.overlay.relays):
            self.counters.introductions_refused += 1
            return IntroAck(status=IntroStatus.REFUSED, token=q.token), 0
        self.overlay.add_event(
            IntroductionReceived(
                caller=body.caller, candidates=body.candidates, initiation=body.initiation
            )
        )
        return IntroAck(status=IntroStatus.DONE, token=q.token), 0
