"""The composition root's choices: ``peerline.toml`` into a ``PhoneConfig``, and the real
collaborators (the OS random source, libopus) the core is given.

Nothing else in the app knows how the core is configured, and the core knows nothing of files,
the OS or libopus: every collaborator is injected here, so tests and the simulator inject
their own.
"""

import ipaddress

from peerline.adapters.opus import OpusDecoder, OpusEncoder
from peerline.ports import AudioDecoder, AudioEncoder
from peerline.proto.phone import (
    GroupMode,
    LanGroup,
    LanSettings,
    PhoneConfig,
    canonical_groups,
)
from peerline.proto.phone.config import CallConfig, NodeConfig, OverlayConfig
from peerline.store.config import Config

_ROLE_MEMBER: dict[str, bool | None] = {"supernode": True, "client": False, "auto": None}


def phone_config(config: Config) -> PhoneConfig:
    """The core's configuration from the phone's settings (operator.md lists each)."""
    net, overlay = config.network, config.overlay
    lan = None
    if overlay.lan and net.bind4:
        lan = LanSettings(
            extension=overlay.extension or None,
            groups=canonical_groups([_group(g) for g in overlay.groups]),
            group_ring_s=overlay.group_ring_s,
        )
    return PhoneConfig(
        node=NodeConfig(keepalive_s=net.keepalive_s),
        overlay=OverlayConfig(
            member=_ROLE_MEMBER[overlay.role],
            # One setting for every NAT keepalive: sessions' and the relays' pings.
            relay_keepalive_s=net.keepalive_s,
        ),
        calls=CallConfig(
            region=config.audio.tones,
            name=config.phone.name,
            auto_answer=config.calls.auto_answer,
            ring_timeout_s=config.calls.ring_timeout_s,
            call_waiting=config.calls.call_waiting,
        ),
        hotline=config.hardware.hotline or "",
        seeds=tuple((s.public_key, (s.host, s.port)) for s in overlay.parsed_seeds()),
        stun_servers=tuple(config.nat.parsed_servers()),
        # A phone on loopback has no router to ask (and must never ask this machine's).
        port_mapping=config.nat.port_mapping
        and bool(net.bind4)
        and not ipaddress.ip_address(net.bind4).is_loopback,
        lan=lan,
    )


_GROUP_MODES = {"": GroupMode.RING_ALL, "all": GroupMode.RING_ALL, "turn": GroupMode.IN_TURN}
_GROUP_MODES["page"] = GroupMode.PAGE


def _group(text: str) -> LanGroup:
    """ "700", "701:turn", "800:page" (checked by the config) as the announcement carries it."""
    extension, _, mode = text.partition(":")
    return LanGroup(extension, _GROUP_MODES[mode])


def opus_codecs(sample_rate: int) -> tuple[AudioEncoder, AudioDecoder]:
    """A fresh Opus encoder and decoder for one call."""
    return OpusEncoder(sample_rate=sample_rate), OpusDecoder(sample_rate=sample_rate)
