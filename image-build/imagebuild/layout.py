"""Where everything sits on the card: partitions, identifiers, and the kernel command line.

Fixed numbers, derived from nothing but the image's version, so two builds agree to the byte,
and so the boot files can name the root and data partitions before the image exists.
"""

import hashlib
from dataclasses import dataclass

MIB = 1024 * 1024
SECTOR = 512
ALIGN = 4 * MIB
"""Partitions start on 4 MiB boundaries: SD cards erase in blocks of that order."""
BOOT_SIZE = 256 * MIB
"""FAT: firmware, kernel, initramfs and device trees (about 95 MB), room for one more kernel."""
ROOT_SIZE = 768 * MIB
"""The read-only root, squashfs (about 190 MB now): fixed, with room to grow, so that every
version puts the data partition at the same place and an update can leave it alone."""
DATA_SIZE = 256 * MIB
"""The phone's state (identity, peer cache, history, configuration): a few MB in use."""

__all__ = [
    "ALIGN",
    "BOOT_SIZE",
    "DATA_SIZE",
    "MIB",
    "ROOT_SIZE",
    "Layout",
    "disk_id",
    "fs_uuid",
    "plan_layout",
]


def _digest(version: str, what: str) -> bytes:
    return hashlib.sha256(f"peerline-image/{version}/{what}".encode()).digest()


def disk_id(version: str) -> str:
    """The MBR disk identifier (8 hex digits): partitions are PARTUUID=<id>-01, -02, -03."""
    value = int.from_bytes(_digest(version, "disk")[:4], "big") or 1
    return f"{value:08x}"


def fs_uuid(version: str, what: str) -> str:
    """A filesystem UUID (random-looking, version 4 form) fixed by the version."""
    raw = bytearray(_digest(version, what)[:16])
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def fat_volume_id(version: str) -> str:
    return _digest(version, "fat")[:4].hex()


@dataclass(frozen=True, slots=True)
class Layout:
    """Byte offsets and sizes of the three partitions and the whole image."""

    disk_id: str
    boot_start: int
    boot_size: int
    root_start: int
    root_size: int
    data_start: int
    data_size: int

    @property
    def image_size(self) -> int:
        return self.data_start + self.data_size

    def partuuid(self, number: int) -> str:
        return f"{self.disk_id}-{number:02d}"

    def sfdisk_script(self) -> str:
        """Input for ``sfdisk``: an MBR (the Pi 3 and Zero 2 W boot ROMs read no GPT)."""
        rows = [
            (self.boot_start, self.boot_size, "c", ", bootable"),  # W95 FAT32 (LBA)
            (self.root_start, self.root_size, "83", ""),
            (self.data_start, self.data_size, "83", ""),
        ]
        lines = ["label: dos", f"label-id: 0x{self.disk_id}", "unit: sectors", ""]
        lines += [
            f"start={start // SECTOR}, size={size // SECTOR}, type={kind}{flag}"
            for start, size, kind, flag in rows
        ]
        return "\n".join(lines) + "\n"


def plan_layout(version: str) -> Layout:
    """Boot, the read-only root, the data partition: the same offsets for every version."""
    boot_start = ALIGN
    root_start = boot_start + BOOT_SIZE
    root_size = ROOT_SIZE
    data_start = root_start + root_size
    return Layout(
        disk_id=disk_id(version),
        boot_start=boot_start,
        boot_size=BOOT_SIZE,
        root_start=root_start,
        root_size=root_size,
        data_start=data_start,
        data_size=DATA_SIZE,
    )
