"""What lives where in a phone's data directory: one place for the daemon and the CLI.

Light on purpose (the CLI imports it on every run). The key file's and the configuration's
names are the store's too (``store.keyfile``, ``store.config``); a test keeps them equal.
"""

from dataclasses import dataclass
from pathlib import Path

CONTROL_SOCKET_NAME = "control.sock"
DATABASE_NAME = "peerline.db"
KEY_FILE_NAME = "identity.key"
CONFIG_FILE_NAME = "peerline.toml"
EMULATOR_LOG_NAME = "peerline.log"
"The emulator's log: its terminal is the phone's screen."
LOCK_NAME = "run.lock"
"Held by the running phone: one phone per data directory."


@dataclass(frozen=True, slots=True)
class Paths:
    data: Path

    @property
    def control_socket(self) -> Path:
        return self.data / CONTROL_SOCKET_NAME

    @property
    def database(self) -> Path:
        return self.data / DATABASE_NAME

    @property
    def key_file(self) -> Path:
        return self.data / KEY_FILE_NAME

    @property
    def config_file(self) -> Path:
        return self.data / CONFIG_FILE_NAME

    @property
    def emulator_log(self) -> Path:
        return self.data / EMULATOR_LOG_NAME

    @property
    def lock(self) -> Path:
        return self.data / LOCK_NAME
