"""``AudioEncoder``/``AudioDecoder`` over libopus (through opuslib's ctypes bindings).

Voice is Opus in VOIP mode, mono, 20 ms frames of 16-bit little-endian PCM: 320 samples at the
default 16 kHz (wideband), 960 at 48 kHz (fullband).

    enc = OpusEncoder()                      # 16 kHz; OpusEncoder(sample_rate=48_000) for 48 kHz
    enc.set_fec(True)
    enc.set_packet_loss_percent(10)
    packet = enc.encode(pcm)                 # len(pcm) == 2 * enc.frame_samples
    dec = OpusDecoder()
    pcm = dec.decode(packet)

opuslib 3.0.1's property setters raise TypeError, so every setting goes through
``opuslib.api.encoder.encoder_ctl`` (design brief §12). opuslib needs the system ``libopus0``;
without it the constructors raise ``OpusUnavailable``.

Errors:

- ``OpusUnavailable`` (``PeerlineError``, ``ImportError``): libopus or opuslib is missing.
- ``OpusDecodeError`` (``peerline.errors.DecodeError``, so also ``ValueError``): a payload libopus
  rejects (empty, corrupt, or not exactly one 20 ms frame). The decoder stays usable: the caller
  counts the error and conceals the frame. Random bytes that happen to form a valid Opus packet
  are not detectable and decode to noise; authentication happens before the codec.
- ``ValueError``: the caller passed PCM of the wrong length or a setting out of range.
"""

import ctypes
import functools
import importlib
import weakref
from typing import Any

from peerline.errors import DecodeError, PeerlineError

FRAME_MS = 20
"""Frame duration in milliseconds: every packet carries exactly one 20 ms frame."""

SAMPLE_RATES = (16_000, 24_000, 48_000)
"""Rates accepted, in Hz: wideband or better."""

MIN_BITRATE = 6_000
MAX_BITRATE = 510_000
"""libopus' bitrate range in bits per second."""

MAX_PACKET = 1275
"""Largest Opus frame in bytes (RFC 6716 §3.4, R2): the encoder's output buffer."""

_CHANNELS = 1
_BYTES_PER_SAMPLE = 2


class OpusUnavailable(PeerlineError, ImportError):
    """opuslib or the system libopus (Debian: ``libopus0``) is not installed."""


class OpusDecodeError(DecodeError):
    """libopus rejected a payload; ``code`` is its negative error code (0 when checked here)."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


_MODULES = (
    "opuslib",
    "opuslib.api.ctl",
    "opuslib.api.encoder",
    "opuslib.api.decoder",
    "opuslib.api.info",
)


@functools.cache
def _opuslib() -> tuple[Any, Any, Any, Any, Any]:
    """opuslib and its ctl, encoder, decoder and info APIs (``OpusUnavailable`` without libopus)."""
    try:
        # opuslib raises a bare Exception from its import when it cannot find libopus.
        lib, ctl, encoder, decoder, info = (importlib.import_module(name) for name in _MODULES)
    except Exception as exc:
        raise OpusUnavailable(
            f"Opus is unavailable ({exc}): install libopus0 and opuslib (scripts/setup)"
        ) from exc
    return lib, ctl, encoder, decoder, info


def _check_rate(sample_rate: int) -> int:
    if sample_rate not in SAMPLE_RATES:
        raise ValueError(f"sample_rate must be one of {SAMPLE_RATES} Hz, not {sample_rate}")
    return sample_rate * FRAME_MS // 1000


def _strerror(code: int) -> str:
    """libopus' text for a negative error code."""
    info = _opuslib()[4]
    text = info.strerror(code) if code < 0 else b"bad argument"
    return text.decode() if isinstance(text, bytes) else str(text)


class OpusEncoder:
    """Opus encoder, VOIP application, mono, 20 ms frames.

    ``sample_rate`` is 16000 (default), 24000 or 48000 Hz. The keyword settings are applied at
    once through the same setters the media layer calls later: ``bitrate`` in bit/s (None keeps
    libopus' automatic choice), ``fec``, ``packet_loss_percent`` (0..100) and ``dtx``.
    """

    def __init__(
        self,
        *,
        sample_rate: int = 16_000,
        bitrate: int | None = None,
        fec: bool = False,
        packet_loss_percent: int = 0,
        dtx: bool = False,
    ) -> None:
        self.frame_samples = _check_rate(sample_rate)
        self.sample_rate = sample_rate
        lib, ctl, encoder, _decoder, _info = _opuslib()
        self._ctl = ctl
        self._api = encoder
        self._error = lib.OpusError
        try:
            self._state = encoder.create_state(sample_rate, _CHANNELS, lib.APPLICATION_VOIP)
        except lib.OpusError as exc:
            raise OpusUnavailable(f"opus_encoder_create failed: {exc}") from exc
        weakref.finalize(self, encoder.destroy, self._state)
        if bitrate is not None:
            self.set_bitrate(bitrate)
        self.set_fec(fec)
        self.set_packet_loss_percent(packet_loss_percent)
        self.set_dtx(dtx)
        self.lookahead: int = encoder.encoder_ctl(self._state, ctl.get_lookahead)
        """Codec delay in samples: decoded audio lags the input by this much."""

    def encode(self, pcm: bytes) -> bytes:
        """Encode one frame (``2 * frame_samples`` bytes of 16-bit mono PCM) into one packet.

        With DTX on, silence gives 1-byte packets (a comfort-noise update every 400 ms);
        libopus says a packet of 2 bytes or less need not be sent. Then: send the packet.
        """
        if len(pcm) != self.frame_samples * _BYTES_PER_SAMPLE:
            raise ValueError(
                f"one frame is {self.frame_samples * _BYTES_PER_SAMPLE} bytes of PCM, "
                f"not {len(pcm)}"
            )
        try:
            packet: bytes = self._api.encode(self._state, pcm, self.frame_samples, MAX_PACKET)
        except self._error as exc:
            raise RuntimeError(f"opus_encode failed: {exc.code}") from exc
        return packet

    def set_bitrate(self, bps: int) -> None:
        """Target bitrate in bits per second (6000..510000)."""
        if not MIN_BITRATE <= bps <= MAX_BITRATE:
            raise ValueError(f"bitrate must be {MIN_BITRATE}..{MAX_BITRATE} bit/s, not {bps}")
        self._set(self._ctl.set_bitrate, bps)

    def set_fec(self, on: bool) -> None:
        """In-band FEC: each packet also carries a low-rate copy of the previous frame.

        libopus only adds it when ``set_packet_loss_percent`` is above 0 and the bitrate leaves
        room (libopus 1.3 at 16 kHz: at 24 kbit/s it does, at 16 kbit/s it adds none).
        """
        self._set(self._ctl.set_inband_fec, int(on))

    def set_packet_loss_percent(self, pct: int) -> None:
        """Expected packet loss (0..100 %); higher values make FEC stronger."""
        if not 0 <= pct <= 100:
            raise ValueError(f"packet loss must be 0..100 %, not {pct}")
        self._set(self._ctl.set_packet_loss_perc, pct)

    def set_dtx(self, on: bool) -> None:
        """Discontinuous transmission: near-empty packets while the input is silent."""
        self._set(self._ctl.set_dtx, int(on))

    def _set(self, request: Any, value: int) -> None:
        try:
            self._api.encoder_ctl(self._state, request, value)
        except self._error as exc:
            raise ValueError(f"opus_encoder_ctl rejected {value}: {_strerror(exc.code)}") from exc


class OpusDecoder:
    """Opus decoder, mono, 20 ms frames; ``sample_rate`` is 16000 (default), 24000 or 48000 Hz.

    Every method returns exactly one frame: ``2 * frame_samples`` bytes of 16-bit mono PCM.
    ``decode`` and ``decode_fec`` raise ``OpusDecodeError`` for a payload libopus rejects, and
    the decoder stays usable afterwards.
    """

    def __init__(self, *, sample_rate: int = 16_000) -> None:
        self.frame_samples = _check_rate(sample_rate)
        self.sample_rate = sample_rate
        lib, _ctl, _encoder, decoder, _info = _opuslib()
        self._api = decoder
        self._error = lib.OpusError
        try:
            self._state = decoder.create_state(sample_rate, _CHANNELS)
        except lib.OpusError as exc:
            raise OpusUnavailable(f"opus_decoder_create failed: {exc}") from exc
        weakref.finalize(self, decoder.destroy, self._state)

    def decode(self, payload: bytes) -> bytes:
        """Decode one packet holding one 20 ms frame. Then: play the PCM."""
        self._check(payload)
        return self._decode(payload, fec=False)

    def decode_fec(self, next_payload: bytes) -> bytes:
        """Rebuild a lost frame from the in-band FEC carried by the packet after it.

        If that packet carries no FEC, libopus conceals instead (as ``conceal``). Then:
        ``decode(next_payload)`` for the frame that packet itself carries.
        """
        self._check(next_payload)
        return self._decode(next_payload, fec=True)

    def conceal(self) -> bytes:
        """Packet-loss concealment for one lost frame (libopus PLC). Then: play the PCM."""
        return self._decode(None, fec=False)

    def _check(self, payload: bytes) -> None:
        if not payload:
            raise OpusDecodeError("empty Opus payload (use conceal() for a lost frame)")
        try:
            samples = self._api.get_nb_samples(self._state, payload, len(payload))
        except self._error as exc:
            raise OpusDecodeError(f"invalid Opus packet: {_strerror(exc.code)}", exc.code) from exc
        if samples != self.frame_samples:
            raise OpusDecodeError(
                f"Opus packet holds {samples} samples, not one {FRAME_MS} ms frame "
                f"({self.frame_samples})"
            )

    def _decode(self, payload: bytes | None, *, fec: bool) -> bytes:
        length = 0 if payload is None else len(payload)
        try:
            pcm: bytes = self._api.decode(
                self._state, payload, length, self.frame_samples, fec, channels=_CHANNELS
            )
        except (self._error, ctypes.ArgumentError) as exc:
            code = getattr(exc, "code", 0)
            raise OpusDecodeError(f"opus_decode failed: {_strerror(code)}", code) from exc
        if len(pcm) != self.frame_samples * _BYTES_PER_SAMPLE:
            raise OpusDecodeError(f"opus_decode gave {len(pcm) // 2} samples, not one frame")
        return pcm
