"""The simulator's stand-in for Opus: packets of the right size and timing, no signal.

Calls in the simulator exercise everything around the codec (packetisation, DTX, redundancy,
the jitter buffer, receiver reports, bitrate adaptation), which depends only on packet sizes
and timing. libopus would add CPU time and a dependency on its exact version (digests must be
the same on every machine), so a call here encodes each frame as ``bitrate / 400`` bytes (a
20 ms frame at that bitrate) carrying the frame's first samples, and silence as a 1-byte DTX
packet, as libopus does. The decoder turns a packet back into a frame of its leading samples
repeated, so what a call played can be told from silence and from concealment.
"""

from peerline.ports import AudioDecoder, AudioEncoder

SAMPLE_RATE = 16_000
FRAME = SAMPLE_RATE // 50


class SimEncoder:
    sample_rate = SAMPLE_RATE
    frame_samples = FRAME

    def __init__(self) -> None:
        self.bitrate = 32_000
        self.dtx = True
        self.fec = False

    def encode(self, pcm: bytes) -> bytes:
        if self.dtx and not any(pcm):
            return b"\x00"
        size = max(3, self.bitrate // 400)
        return (pcm[:size] + bytes(size))[:size]

    def set_bitrate(self, bps: int) -> None:
        self.bitrate = bps

    def set_fec(self, on: bool) -> None:
        self.fec = on

    def set_packet_loss_percent(self, pct: int) -> None:
        pass  # nothing to tune: the stand-in carries no FEC

    def set_dtx(self, on: bool) -> None:
        self.dtx = on


class SimDecoder:
    sample_rate = SAMPLE_RATE
    frame_samples = FRAME

    def decode(self, payload: bytes) -> bytes:
        lead = payload[:2] if len(payload) >= 2 else b"\x01\x00"
        return lead * FRAME

    def decode_fec(self, next_payload: bytes) -> bytes:
        return self.conceal()

    def conceal(self) -> bytes:
        return bytes(2 * FRAME)


def sim_codecs(sample_rate: int) -> tuple[AudioEncoder, AudioDecoder]:
    """A fresh encoder and decoder for one call (the ``CodecFactory`` simulations inject)."""
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"the simulated codec runs at {SAMPLE_RATE} Hz")
    return SimEncoder(), SimDecoder()


def _square(level: int) -> bytes:
    half = (level.to_bytes(2, "little", signed=True), (-level).to_bytes(2, "little", signed=True))
    return b"".join(half[(i // 20) % 2] for i in range(FRAME))


_LEVELS = tuple(_square(4000 + 100 * step) for step in range(7))
_SILENCE = bytes(2 * FRAME)


def speech_frame(index: int, *, talk_s: float = 1.2, pause_s: float = 0.6) -> bytes:
    """Frame ``index`` (20 ms each) of a talker: a loud square wave (its level stepping frame
    by frame) in talkspurts of ``talk_s``, and silence for ``pause_s`` in between (so DTX comes
    and goes)."""
    period = round((talk_s + pause_s) * 50)
    if index % period >= round(talk_s * 50):
        return _SILENCE
    return _LEVELS[index % 7]
