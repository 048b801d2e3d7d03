"""``image-build/smoke-boot``: boot the image in qemu and wait for the phone to be ready.

The image's own kernel and initramfs (from its boot partition) and its own disk, in
``qemu-system-aarch64 -M virt`` with software emulation and no network card: the same root
filesystem, units and first boot as on a Pi, minus the Pi's devices. A root shell on the serial
console (systemd's debug shell, switched on by this kernel command line only) asks systemd
until ``peerline.service`` is active, which for a Type=notify service means the phone sent
READY=1, then asks the phone for its status.

Options: a ``peerline.toml`` to put on the boot partition first (its name and hotline are
then checked in the status), and a watchdog check (the phone is stopped with SIGSTOP and must
be restarted by systemd).
"""

import argparse
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

from .layout import SECTOR

SHELL = re.compile(r"Started debug-shell\.service|root@peerline")
MARK = "PEERLINE-SMOKE"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="image-build/smoke-boot", description=__doc__.split("\n")[0]
    )
    parser.add_argument("image", type=Path)
    parser.add_argument("--boot-config", type=Path, help="a peerline.toml for the boot partition")
    parser.add_argument("--watchdog", action="store_true", help="also check a stall's restart")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to reach ready")
    parser.add_argument("--log", type=Path, help="write the whole serial console here")
    args = parser.parse_args(argv)
    if shutil.which("qemu-system-aarch64") is None:
        sys.exit("smoke-boot: qemu-system-aarch64 is missing (apt-get install qemu-system-arm)")
    with tempfile.TemporaryDirectory(prefix="peerline-smoke-") as tmp:
        return boot(args, Path(tmp))


def _boot_offset(image: Path) -> int:
    out = subprocess.run(
        ["sfdisk", "--json", str(image)], capture_output=True, text=True, check=True
    ).stdout
    table = json.loads(out)["partitiontable"]
    return int(table["partitions"][0]["start"]) * SECTOR


def _partuuid(image: Path, number: int) -> str:
    out = subprocess.run(
        ["sfdisk", "--disk-id", str(image)], capture_output=True, text=True, check=True
    ).stdout.strip()
    return f"{int(out, 16):08x}-{number:02d}"


def boot(args: argparse.Namespace, tmp: Path) -> int:
    disk = tmp / "disk.img"
    subprocess.run(["cp", "--sparse=always", str(args.image), str(disk)], check=True)
    fat = f"{disk}@@{_boot_offset(disk)}"
    env = os.environ | {"MTOOLS_SKIP_CHECK": "1"}
    names = subprocess.run(
        ["mdir", "-b", "-i", fat, "::/"], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    kernel = next(n for n in names if Path(n).name.startswith("vmlinuz-"))
    initrd = next(n for n in names if Path(n).name.startswith("initrd.img-"))
    for name in (kernel, initrd):
        subprocess.run(["mcopy", "-i", fat, name, str(tmp)], check=True, env=env)
    expected: dict[str, str] = {}
    if args.boot_config is not None:
        subprocess.run(
            ["mcopy", "-i", fat, str(args.boot_config), "::/peerline.toml"], check=True, env=env
        )
        tree = tomllib.loads(args.boot_config.read_text())
        expected = {
            "name": tree.get("phone", {}).get("name", ""),
            "hotline": tree.get("hardware", {}).get("hotline", ""),
        }
    cmdline = (
        f"root=PARTUUID={_partuuid(disk, 2)} rootfstype=squashfs ro rootwait console=ttyAMA0 "
        "systemd.debug_shell=ttyAMA0 systemd.mask=serial-getty@ttyAMA0.service "
        "systemd.show_status=1 net.ifnames=0"
    )
    qemu = [
        "qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-smp", "2", "-m", "1024",
        "-nographic", "-nic", "none", "-no-reboot",
        "-kernel", str(tmp / Path(kernel).name), "-initrd", str(tmp / Path(initrd).name),
        "-append", cmdline,
        "-drive", f"if=none,file={disk},format=raw,id=disk",
        "-device", "virtio-blk-pci,drive=disk",
        "-device", "virtio-rng-pci",
    ]  # fmt: skip
    print("+ " + " ".join(qemu), flush=True)
    console = Console(qemu, args.log)
    started = time.monotonic()
    try:
        if not console.wait_for(SHELL, min(args.timeout, 300.0)):
            return console.fail("no root shell on the serial console (systemd's debug shell)")
        if not console.wait_active(started + args.timeout):
            return console.fail(f"peerline.service did not report ready in {args.timeout:.0f} s")
        ready_s = time.monotonic() - started
        print(f"smoke-boot: peerline.service ready after {ready_s:.0f} s", flush=True)
        status = console.status()
        if status is None:
            return console.fail("the debug shell did not answer with the phone's status")
        print(
            f"smoke-boot: number {status.get('number_display')}  name {status.get('name')!r}  "
            f"hotline {status.get('hotline')!r}  boot_config {status.get('boot_config')}",
            flush=True,
        )
        for key, want in expected.items():
            if want and status.get(key) != want:
                return console.fail(f"status {key} is {status.get(key)!r}, not {want!r}")
        if args.watchdog:
            restart_s = console.watchdog()
            if restart_s is None:
                return console.fail("a stalled phone was not restarted by the watchdog")
            print(f"smoke-boot: stalled phone restarted by the watchdog after {restart_s:.0f} s")
        print(f"smoke-boot: ok in {time.monotonic() - started:.0f} s")
        return 0
    finally:
        console.close()


class Console:
    """The guest's serial console: lines read by a thread, commands typed into the shell."""

    def __init__(self, argv: list[str], log: Path | None) -> None:
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.tail: list[str] = []
        self.log = log.open("w") if log is not None else None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\r\n").replace("\r", "")
            line = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line)
            if self.log is not None:
                self.log.write(line + "\n")
                self.log.flush()
            self.tail = [*self.tail[-59:], line]
            self.lines.put(line)

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str] | None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                if self.proc.poll() is not None:
                    return None
                continue
            if found := pattern.search(line):
                return found
        return None

    def type(self, command: str) -> None:
        """A few characters at a time: the emulated UART's 32-byte FIFO overflows (characters
        lost) when a whole line arrives at once and the slow guest is busy."""
        assert self.proc.stdin is not None
        data = command.encode() + b"\n"
        for i in range(0, len(data), 8):
            self.proc.stdin.write(data[i : i + 8])
            self.proc.stdin.flush()
            time.sleep(0.05)

    def run(self, command: str, timeout: float = 120.0) -> str | None:
        """A shell command's output, between markers (the console also carries kernel lines)."""
        tag = f"{MARK}-{time.monotonic_ns()}"
        self.type(f"echo {tag}-BEGIN; {command}; echo {tag}-END")
        begin = re.compile(rf"^{tag}-BEGIN$")
        end = re.compile(rf"^{tag}-END$")
        if not self.wait_for(begin, timeout):
            return None
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1.0)
            except queue.Empty:
                continue
            if end.search(line):
                return "\n".join(out)
            out.append(line)
        return None

    def wait_active(self, deadline: float) -> bool:
        """``systemctl is-active``: "activating" until a Type=notify service sends READY=1."""
        while time.monotonic() < deadline:
            out = (self.run("systemctl is-active peerline.service", timeout=60.0) or "").split()
            if out[-1:] == ["active"]:
                return True
            if out[-1:] == ["failed"]:
                return False
            time.sleep(5)
        return False

    def status(self) -> dict[str, object] | None:
        for _ in range(3):
            out = self.run(
                "/opt/peerline/bin/peerline status --json --data /var/lib/peerline | tr -d '\\n'"
                "; echo"
            )
            for line in (out or "").splitlines():
                if line.startswith("{"):
                    try:
                        value = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(value, dict):
                        return value
            time.sleep(5)
        return None

    def watchdog(self) -> float | None:
        """Stall the phone (SIGSTOP: its event loop stops pinging) and time its restart."""
        before = self.run("systemctl show -P NRestarts peerline.service")
        if before is None or not before.strip().splitlines()[-1].isdigit():
            return None
        count = int(before.strip().splitlines()[-1])
        started = time.monotonic()
        self.type("systemctl kill --signal=SIGSTOP --kill-whom=main peerline.service")
        while time.monotonic() - started < 180:
            time.sleep(5)
            out = self.run(
                "systemctl show -P NRestarts peerline.service; systemctl is-active peerline.service"
            )
            words = (out or "").split()
            restarted = len(words) >= 2 and words[-2].isdigit() and int(words[-2]) > count
            if restarted and words[-1] == "active":
                took = time.monotonic() - started
                why = self.run("journalctl -b -u peerline.service -o cat | grep -i watchdog") or ""
                print(f"smoke-boot: the journal says: {why.strip()}", flush=True)
                return took if "Watchdog timeout" in why else None
        return None

    def fail(self, why: str) -> int:
        print("smoke-boot: the console's last lines:", file=sys.stderr)
        print("\n".join(f"  | {line}" for line in self.tail[-40:]), file=sys.stderr)
        print(f"smoke-boot: FAILED: {why}", file=sys.stderr)
        return 1

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.log is not None:
            self.log.close()


if __name__ == "__main__":
    sys.exit(main())
