"""Relay channels over the overlay: RELAY_OPEN / RELAY_OPENED, and forwarding (protocol.md
§11.1-§11.2).

Both sides of a channel, as a service registered on the phone's ``Overlay``: the caller's
(``open``: ask one of the callee's relays for a channel; the outcome is ``RelayChannelOpened``
or ``RelayChannelFailed``, after one retry with the token a REFUSED carries) and the relay's
(answer RELAY_OPEN for a validated caller and one of our clients, keep the channels in a
``RelayTable``, ``forward`` relayed session packets). It lives in ``proto.nat`` because relaying
is NAT traversal; the overlay supplies the authenticated request path (pair-key MACs, tokens,
retries) and knows nothing of channels. ``proto.engine.Engine`` builds one per phone.
"""

from dataclasses import asdict, dataclass

from peerline.proto.overlay.events import RelayChannelFailed, RelayChannelOpened
from peerline.proto.overlay.overlay import Overlay
from peerline.proto.overlay.rpc import Reply, Request
from peerline.proto.overlay.serving import Inbound
from peerline.types import Addr
from peerline.wire.overlay import (
    NO_TOKEN,
    Body,
    Contact,
    Kind,
    RelayOpen,
    RelayOpened,
    RelayStatus,
)

from .relay import RelayConfig, RelayTable


@dataclass(slots=True)
class RelayServiceCounters:
    """Shown with the overlay's counters (``status``: ``overlay.counters``)."""

    relay_opens_sent: int = 0
    relay_opens_refused: int = 0
    "RELAY_OPENs this node answered with anything but OPENED (as a relay)."

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True, eq=False)
class _Opening:
    """A RELAY_OPEN of ours: its target (for the outcome's event) and whether it is already
    the retry of a refused one (refused again: failed)."""

    body: RelayOpen
    retry: bool = False


class RelayService:
    """See module docstring. ``config``: the relay's quotas (when this phone is a supernode)."""

    def __init__(self, overlay: Overlay, *, config: RelayConfig | None = None) -> None:
        self.overlay = overlay
        self.table = RelayTable(rng=overlay.rng, client_addr=overlay.client_addr, config=config)
        "Channels this node carries for others while it is a supernode (§11)."
        self.counters = RelayServiceCounters()
        overlay.register_request(Kind.RELAY_OPEN, self._on_open)
        overlay.register_reply(Kind.RELAY_OPENED, self._on_opened, on_timeout=self._on_timeout)

    # -- the caller ---------------------------------------------------------------------------
    def open(self, target: bytes, relay: Contact, *, now: float) -> bool:
        """Ask ``relay`` (one of ``target``'s relays) for a channel to ``target`` (§11.1): for
        when no direct path opens. The outcome: ``RelayChannelOpened`` or ``RelayChannelFailed``."""
        overlay = self.overlay
        if relay.public_key == overlay.public_key:
            return False
        body = RelayOpen(token=overlay.token_for(relay.addr, now), target=target)
        req = overlay.request(
            Kind.RELAY_OPEN, body, relay.public_key, relay.addr, now=now, context=_Opening(body)
        )
        if req is None:
            return False
        self.counters.relay_opens_sent += 1
        return True

    def _on_opened(self, reply: Reply) -> None:
        req, body, token = reply.request, reply.body, reply.token
        opening = req.context
        if not isinstance(opening, _Opening) or not isinstance(body, RelayOpened):
            return
        if req.public_key is None:
            return
        overlay = self.overlay
        target = opening.body.target
        relay = Contact(req.public_key, req.addr)
        if body.status is RelayStatus.OPENED:
            overlay.add_event(RelayChannelOpened(target=target, relay=relay, channel=body.channel))
        elif body.status is RelayStatus.REFUSED and not opening.retry and token != NO_TOKEN:
            # Refused for want of a valid token (none yet, or one for the address we had before
            # our NAT rebound), which this very reply carries: ask once more.
            again = RelayOpen(token=token, target=target)
            retry = overlay.request(
                Kind.RELAY_OPEN,
                again,
                req.public_key,
                req.addr,
                now=reply.now,
                context=_Opening(again, retry=True),
            )
            if retry is None:
                overlay.add_event(RelayChannelFailed(target=target, relay=relay, reason="busy"))
        else:
            reason = body.status.name.lower()
            overlay.add_event(RelayChannelFailed(target=target, relay=relay, reason=reason))

    def _on_timeout(self, req: Request, now: float) -> None:
        opening = req.context
        if isinstance(opening, _Opening) and req.public_key is not None:
            relay = Contact(req.public_key, req.addr)
            self.overlay.add_event(
                RelayChannelFailed(target=opening.body.target, relay=relay, reason="timeout")
            )

    # -- the relay ----------------------------------------------------------------------------
    def _on_open(self, q: Inbound) -> tuple[Body, int] | None:
        """As a relay: open a channel from a validated caller to one of our clients."""
        body = q.body
        if not isinstance(body, RelayOpen):
            return None
        overlay, sender = self.overlay, q.header.sender
        status, channel = RelayStatus.FULL, 0
        if not q.validated:
            status = RelayStatus.REFUSED  # the caller's address must be proven (§9.8)
        elif not overlay.member or body.target == sender:
            status = RelayStatus.FULL  # a node behind NAT relays nothing
        elif overlay.client_addr(body.target, q.now) is None:
            status = RelayStatus.NOT_MY_CLIENT
        else:
            status, channel = self.table.open(sender, q.addr, body.target, q.now)
        if status is not RelayStatus.OPENED:
            self.counters.relay_opens_refused += 1
        return RelayOpened(status=status, token=q.token, channel=channel), 0

    def forward(self, data: bytes, addr: Addr, *, now: float) -> None:
        """As a supernode: pass a relayed session packet on (§11.2); dropped and counted if it
        fits no channel, comes from the wrong side, or is over the channel's rate."""
        if not self.overlay.member:
            self.table.counters.dropped_unknown_channel += 1
            return
        out = self.table.forward(data, addr, now)
        if out is not None:
            self.overlay.queue_datagram(*out)
