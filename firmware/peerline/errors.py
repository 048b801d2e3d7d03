"""One exception tree for the project, with builtin second parents (as gpiozero does).

``LocalProtocolError`` is raised to callers who misuse an API. ``RemoteProtocolError`` and
``DecodeError`` describe bad input from the network: they never escape ``Node.receive_datagram``;
the node drops the datagram and counts it.
"""


class PeerlineError(Exception):
    """Root of every error Peerline raises on purpose."""


class LocalProtocolError(PeerlineError, RuntimeError):
    """The caller used an API in a way the protocol does not allow."""


class RemoteProtocolError(PeerlineError, ValueError):
    """The peer sent something the protocol does not allow."""


class DecodeError(RemoteProtocolError):
    """Bytes that do not parse: truncated, oversize, trailing data or bad field values."""


class CryptoError(RemoteProtocolError):
    """Authentication failed: a tag did not verify or a key is invalid."""


class InvalidKey(PeerlineError, ValueError):
    """A key has the wrong length or is not a valid curve point."""


class InvalidNumber(PeerlineError, ValueError):
    """A dialable number is malformed or does not derive from the key it is paired with."""


class ConfigError(PeerlineError, ValueError):
    """The configuration is invalid; the message names the key and the problem."""


class StoreError(PeerlineError, OSError):
    """The data directory cannot be used (missing, wrong permissions, existing key)."""


class ReplayError(RemoteProtocolError):
    """A transport packet's counter was already accepted or is too old for the window."""


class HardwareError(PeerlineError, OSError):
    """A handset part is missing or stopped answering (no I2C display, a GPIO pin busy): the
    phone goes on without it (headless, or driven by the control API) and says so once."""


class DisplayError(HardwareError):
    """The display did not take a picture or a command (I2C error, unplugged panel)."""
