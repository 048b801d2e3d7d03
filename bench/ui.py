"""What the handset UI costs per 20 ms audio frame period, on a simulated phone with a display,
as one JSON line.

    .venv/bin/python bench/ui.py [--seconds 60] [--seed 1] [--repeat 200]

The acceptance item: "The UI loop adds no more than 1 ms per audio frame period on this
machine". ``HandsetUI`` is driven by ``peerline.sim.handset`` (``attach``) on a real phone core
in the simulator's virtual time, with real phone cores at the far ends, as the daemon's handset
shell (``peerline.app.handset.Handset``) drives it on the event loop: after every input the
commands go to the core and one timer is re-armed; this benchmark adds what that shell's
``_outputs`` does after every drive (``settings_to_save()``, ``leds()`` compared with the LEDs
set, ``brightness`` and ``display_awake`` compared with what the display has, ``screen()``
compared with the screen last shown) and, for each screen that changed, ``render(screen,
(128, 64))``, which the phone runs on the display's thread (``runtime/screen.py``).

The scenario (one seed: the simulator's and the person's timing; a 4x4 keypad, A ok, B back,
C up, D down): the phone ``a`` idles 35 s (the clock ticks, the display sleeps at 30 s); a key
wakes it; the person lifts the handset and types ``b``'s number (the twelfth digit dials);
``b`` rings 4 s and answers; the call lasts ``--seconds`` (the call timer ticks every second;
quality bars, path and SAS come from ``CoreView.call_details``), with DTMF digits, volume
up and down, the headset unplugged and back, and a held key; the handset is put down; ``b``
sends a long message and ``c`` a short one; ``c`` calls, rings 5 s, is answered by lifting,
talks 10 s and hangs up; ``d`` calls and gives up after 6 s (a missed call: the LED flashes);
the person browses the menu: contacts (scrolled, a held key repeats), history (scrolled), the
messages list resting 10 s on the long message (its marquee scrolls), then opens it, scrolls
the page and goes back to idle; the phone idles 35 s and sleeps again. About 210 s of virtual
time with the default call (10 300 periods); about a second of wall time here.

What is timed: every ``HandsetUI`` call the harness makes after ``attach`` (``key_edge``,
``hook_edge``, ``phone_event``, ``handle_timer``, ``rejected``, ``commands_to_send``,
``get_timer``), ``audio_device`` (the scenario calls it), the shell's output work above (spans
``settings_to_save``, ``leds`` and ``screen``, which holds the brightness and awake checks too)
and each ``render``, with ``time.perf_counter_ns`` around the call:
the time the one thread is held, which is what delays the event loop. That is wall time, so on
a busy machine it counts preemption too; ``ui_cpu_ms`` (``thread_time_ns`` around the same
spans, totalled; it also holds about ``span_overhead_cpu_ns`` of clock reads a span) against
``ui_wall_ms`` tells the two apart. Virtual time stands still while the UI runs, so each span
lies in one period. The phone core's work on the UI's commands (``core.handle``) is the core's, as
for any front end, and is not counted. ``attach`` itself (the UI built, the hook's first state)
is start-up and outside the window; the font is loaded by one render before it, as the daemon's
first screen does at start. The garbage collector stays on: a collection that falls in a span
is counted, as it would be on the phone.

Definition::

    loop_us[k]        = sum of the spans of UI work, render excluded, in period k
    with_render_us[k] = loop_us[k] + the render spans in period k
    period k          = virtual time [t0 + k * 20 ms, t0 + (k + 1) * 20 ms), t0 the window's
                        start; every period of the window counts, the idle ones as 0
    goal_met          = loop_us_p99 <= 1000 and loop_us_mean <= 1000

Percentiles are nearest-rank. The loop's share excludes render because the phone renders on the
display's thread; but render is mostly Python code (Pillow's ``ImageDraw`` calls), which holds
the GIL, so on CPython a render can hold the loop up by about as long as it takes: the
``with_render_us_*`` figures are that bound. ``render_bench`` renders the same screens back to
back (warm caches), so it is cheaper than a render in the scenario (``render_us_mean``).

The line also has: the number of periods (and busy ones, with their mean and median), UI
calls, and per entry point their count, mean and max; screens rendered with the render time's
figures and the worst renders; the worst periods with what ran in them; ``gc_in_spans``, the
garbage collections that ran inside a span (a collection is the whole process's work, started
by everything it allocated: about 0.1 ms for generation 0 and 1 ms for generation 1 here; it
lands in whichever span is allocating at that moment); ``render_bench``: each
distinct screen the scenario produced (up to ``MAX_SCREENS_PER_KIND`` a kind) rendered
``--repeat`` times, the cost per screen kind; the overhead of one empty span; and the machine
(CPU model, CPUs, load, Python, kernel).
"""

import argparse
import gc
import json
import math
import os
import platform
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from peerline.proto.phone import AddPeer, Answer, CallState, Dial, Hangup, SendMessage, events
from peerline.sim.handset import SimHandset, attach
from peerline.sim.phone import SimPhone
from peerline.sim.phones import PhoneWorld
from peerline.ui.handset import HandsetConfig, HandsetUI
from peerline.ui.render import render
from peerline.ui.screens import Screen

PERIOD_S = 0.020
"""An audio frame period."""
BUDGET_US = 1000.0
"""What the UI may add per period (the acceptance item)."""
SIZE = (128, 64)
"""The display (an SSD1306)."""
MAX_SCREENS_PER_KIND = 12
"""``render_bench`` renders at most this many distinct screens of a kind (evenly picked)."""
WORST = 5
"""Periods listed in ``worst_periods``, renders in ``worst_renders``."""
JOIN_S = 5.0
"""Virtual time for the phones to join through the supernode, before the window."""

UI_CALLS = (
    "key_edge",
    "hook_edge",
    "phone_event",
    "handle_timer",
    "audio_device",
    "rejected",
    "commands_to_send",
    "get_timer",
)
"""``HandsetUI`` methods the harness (or the scenario) calls: each is timed."""

LONG_TEXT = (
    "Running late, the train is stuck outside the station. Start without me and keep me a "
    "seat near the window please"
)

T = TypeVar("T")


class Meter:
    """``perf_counter_ns`` spans of UI work, each kept with the 20 ms virtual period it began
    in. ``clock`` is the simulator's virtual time, ``start`` the window's start.

    Then: ``run``/``wrap`` the work; between ``watch_gc`` and ``unwatch_gc``, the garbage
    collections that run inside a span are noted in ``collections``."""

    def __init__(self, clock: Callable[[], float], start: float) -> None:
        self._clock = clock
        self.start = start
        self.spans: list[tuple[int, str, int, int]] = []
        "(period, what, wall ns, thread CPU ns), in the order they ran."
        self.collections: list[tuple[str, int, int]] = []
        "(what, generation, ns): collections that ran inside a span (and count in it)."
        self._depth = 0
        self._what = ""
        self._gc_t0 = 0

    def watch_gc(self) -> None:
        gc.callbacks.append(self._on_gc)

    def unwatch_gc(self) -> None:
        gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if not self._depth:
            return
        if phase == "start":
            self._gc_t0 = time.perf_counter_ns()
        else:
            ns = time.perf_counter_ns() - self._gc_t0
            self.collections.append((self._what, info["generation"], ns))

    def period(self) -> int:
        # The epsilon keeps work due exactly on a boundary (k * 0.02 in floating point) in the
        # period it starts.
        return int((self._clock() - self.start) / PERIOD_S + 1e-9)

    def run(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)``, timed as ``what`` (a span inside another is part of it)."""
        if self._depth:
            return fn(*args, **kwargs)
        self._depth += 1
        self._what = what
        k = self.period()
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        try:
            return fn(*args, **kwargs)
        finally:
            t1 = time.perf_counter_ns()
            c1 = time.thread_time_ns()
            self._depth -= 1
            self.spans.append((k, what, t1 - t0, c1 - c0))

    def wrap(self, what: str, fn: Callable[..., T]) -> Callable[..., T]:
        def timed(*args: Any, **kwargs: Any) -> T:
            return self.run(what, fn, *args, **kwargs)

        return timed


class DisplayShell:
    """The handset shell's output work after each drive, as ``Handset._outputs`` does it
    (firmware/peerline/app/handset.py), with the display thread's render done here and timed
    on its own. Keeps the screens it rendered (distinct, by kind) for ``render_bench``."""

    def __init__(self, ui: HandsetUI, meter: Meter) -> None:
        self.ui = ui
        self.meter = meter
        self.shown: Screen | None = None
        self.leds: dict[str, str] = {}
        self.awake: bool | None = None
        self.contrast: int | None = None
        self.settings_saved = 0
        self.rendered: list[str] = []
        "The kind of each screen rendered, in order (as the render spans)."
        self.screens: dict[str, dict[Screen, None]] = defaultdict(dict)

    def outputs(self) -> None:
        run = self.meter.run
        run("settings_to_save", self._settings)
        run("leds", self._leds)
        changed = run("screen", self._screen)
        if changed is not None:
            run("render", render, changed, SIZE)
            kind = type(changed).__name__
            self.rendered.append(kind)
            self.screens[kind][changed] = None

    def _settings(self) -> None:
        if self.ui.settings_to_save() is not None:
            self.settings_saved += 1  # the shell stores them in the database

    def _leds(self) -> None:
        for name, mode in self.ui.leds().items():
            if self.leds.get(name) != mode:
                self.leds[name] = mode  # the shell sets the pin

    def _screen(self) -> Screen | None:
        """The new screen if it changed, else None (contrast and sleep set as they change)."""
        ui = self.ui
        if ui.brightness != self.contrast:
            self.contrast = ui.brightness
        shown = ui.screen()
        changed = None
        if shown != self.shown:
            self.shown = changed = shown
        if ui.display_awake != self.awake:
            self.awake = ui.display_awake
        return changed


def instrument(handset: SimHandset, meter: Meter) -> DisplayShell:
    """Time the UI's entry points on ``handset`` and add the shell's outputs to its drive.

    Instance attributes shadow the methods (no firmware file changes): the harness calls
    ``self.ui.key_edge`` and ``self.drive`` (also from the timers it arms), so it calls these.
    """
    ui = handset.ui
    for name in UI_CALLS:
        setattr(ui, name, meter.wrap(name, getattr(ui, name)))
    shell = DisplayShell(ui, meter)
    harness_drive = handset.drive

    def drive() -> None:
        harness_drive()  # commands to the core (rejections back), the one timer re-armed
        shell.outputs()

    setattr(handset, "drive", drive)  # noqa: B010 - mypy refuses assigning to a method
    return shell


# -- the scenario -------------------------------------------------------------------------------
class Person:
    """Presses keys with a person's timing (seeded): each held 80-160 ms, 0.2-0.6 s apart."""

    def __init__(self, world: PhoneWorld, handset: SimHandset, rng: random.Random) -> None:
        self.world = world
        self.h = handset
        self.rng = rng
        self.presses = 0

    def press(self, keys: str) -> None:
        for key in keys:
            self.h.press(key, hold=self.rng.uniform(0.08, 0.16), gap=self.rng.uniform(0.2, 0.6))
            self.presses += 1

    def hold(self, key: str, seconds: float) -> None:
        self.h.press(key, hold=seconds, gap=self.rng.uniform(0.2, 0.6))
        self.presses += 1

    def wait(self, seconds: float) -> None:
        self.world.run_for(seconds)

    def until(self, what: str, pred: Callable[[], bool], timeout: float = 10.0) -> None:
        if not self.world.run_until(pred, timeout=timeout):
            raise RuntimeError(f"scenario: {what} did not happen within {timeout} s")


def state(phone: SimPhone) -> CallState | None:
    live = phone.core.live_call()
    return None if live is None else live.state


def build(seed: int) -> tuple[PhoneWorld, SimPhone, dict[str, SimPhone]]:
    """A supernode, the handset's phone ``a`` and three far phones, joined; ``c`` and ``d``
    stored as ``a``'s contacts (``b`` becomes one when called)."""
    world = PhoneWorld(seed)
    s = world.add_phone("s", ("203.0.113.1", 4720))
    a = world.add_phone("a", ("198.51.100.2", 4720), seeds=[s])
    far = {
        name: world.add_phone(name, (f"198.51.100.{i}", 4720), seeds=[s])
        for i, name in enumerate("bcd", start=3)
    }
    world.run_for(JOIN_S)
    for name in "cd":
        peer = far[name]
        a.handle(AddPeer(number=peer.number, public_key=peer.key, addr=peer.addr))
    return world, a, far


def scenario(person: Person, a: SimPhone, far: dict[str, SimPhone], call_s: float) -> None:
    """See the module docstring. Raises ``RuntimeError`` if a step does not happen."""
    w, h = person.world, person.h
    b, c, d = far["b"], far["c"], far["d"]

    person.wait(35.0)  # idle: the clock, then the display sleeps at 30 s
    person.press("5")  # only wakes the display
    person.wait(1.0)

    h.lift()  # dial tone
    person.press(b.number)  # the twelfth digit dials
    person.until("b ringing", lambda: state(b) is CallState.INCOMING)
    person.wait(4.0)
    b.handle(Answer())
    person.until("the call answered", lambda: state(a) is CallState.ACTIVE)

    start = w.sim.now
    actions: list[tuple[float, Callable[[], None]]] = [
        (0.10, lambda: person.press("123")),  # DTMF
        (0.25, lambda: person.press("CC")),  # volume up twice
        (0.40, lambda: headset(h, present=False)),
        (0.50, lambda: headset(h, present=True)),
        (0.60, lambda: person.press("#0")),
        (0.75, lambda: person.press("D")),  # volume down
        (0.85, lambda: person.hold("D", 1.2)),  # held: long, then repeats
    ]
    for fraction, action in actions:
        at = start + fraction * call_s
        if at > w.sim.now:
            w.sim.run_until(at)
        action()
    if start + call_s > w.sim.now:
        w.sim.run_until(start + call_s)
    h.hang_up()
    person.until("b hung up", lambda: state(b) is None)
    person.wait(3.0)  # the call-ended screen goes

    b.handle(SendMessage(target=a.number, text=LONG_TEXT))
    person.until("b's message", lambda: bool(a.of_type(events.MessageReceived)))
    person.wait(3.0)
    c.handle(SendMessage(target=a.number, text="ok, see you at 8"))
    person.until("c's message", lambda: len(a.of_type(events.MessageReceived)) == 2)
    person.wait(3.0)

    c.handle(Dial(target=a.number))
    person.until("c ringing a", lambda: state(a) is CallState.INCOMING)
    person.wait(5.0)
    h.lift()  # answers
    person.until("c's call answered", lambda: state(c) is CallState.ACTIVE)
    person.wait(10.0)
    c.handle(Hangup())
    person.until("c hung up", lambda: state(a) is None)
    person.wait(1.0)
    h.hang_up()
    person.wait(3.0)

    d.handle(Dial(target=a.number))
    person.until("d ringing a", lambda: state(a) is CallState.INCOMING)
    person.wait(6.0)
    d.handle(Hangup())  # missed
    person.until("d gave up", lambda: state(a) is None)
    person.wait(3.0)

    person.press("A")  # the menu: Contacts
    person.press("A")
    person.press("DDC")
    person.hold("D", 1.5)  # repeats
    person.press("B")
    person.press("DA")  # History: d (missed), c, b
    person.press("DDC")
    person.press("B")
    person.press("DA")  # Messages, newest first: c's, then b's long one
    person.press("D")
    person.wait(10.0)  # the marquee scrolls the long item
    person.press("A")  # read it
    person.press("DDD")
    person.press("B")
    person.hold("*", 1.0)  # back to idle

    person.wait(35.0)  # idle: the display sleeps again


def headset(h: SimHandset, *, present: bool) -> None:
    """The USB headset unplugged or back: the shell's ``audio_device``, then a drive."""
    h.ui.audio_device(present, now=h.sim.now)
    h.drive()


# -- figures ------------------------------------------------------------------------------------
def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values (q in 0..100)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(values_us: Sequence[float], prefix: str) -> dict[str, float]:
    ordered = sorted(values_us)
    mean = sum(ordered) / len(ordered) if ordered else 0.0
    return {
        f"{prefix}_mean": round(mean, 2),
        f"{prefix}_p50": round(percentile(ordered, 50), 1),
        f"{prefix}_p99": round(percentile(ordered, 99), 1),
        f"{prefix}_p99_9": round(percentile(ordered, 99.9), 1),
        f"{prefix}_max": round(ordered[-1] if ordered else 0.0, 1),
    }


def gc_summary(collections: Sequence[tuple[str, int, int]]) -> dict[str, Any]:
    """The collections that fell inside UI spans (their time is in the spans' figures): the
    collector runs when the whole process has allocated enough (the simulated network and
    phone cores here, the daemon's other work on the phone), so which span pays is chance."""
    out: dict[str, Any] = {"collections": len(collections)}
    for gen in sorted({g for _, g, _ in collections}):
        times = [ns for _, g, ns in collections if g == gen]
        worst = max(collections, key=lambda c: c[2] if c[1] == gen else -1)
        out[f"gen{gen}"] = {
            "collections": len(times),
            "mean_us": round(sum(times) / len(times) / 1000, 1),
            "max_us": round(max(times) / 1000, 1),
            "max_in": worst[0],
        }
    return out


def span_overhead_ns() -> tuple[int, int]:
    """Median wall and thread CPU time a ``Meter`` records for a call that does nothing (the
    CPU one includes a ``perf_counter_ns`` and about half of each ``thread_time_ns``)."""
    meter = Meter(lambda: 0.0, 0.0)
    for _ in range(2000):
        meter.run("nothing", int)
    middle = len(meter.spans) // 2
    wall = sorted(ns for _, _, ns, _ in meter.spans)[middle]
    cpu = sorted(cpu for _, _, _, cpu in meter.spans)[middle]
    return wall, cpu


def render_bench(screens: dict[str, dict[Screen, None]], repeat: int) -> dict[str, Any]:
    """Each kind's distinct screens (evenly picked, at most ``MAX_SCREENS_PER_KIND``), each
    rendered ``repeat`` times: microseconds a render."""
    out: dict[str, Any] = {}
    for kind, seen in sorted(screens.items()):
        distinct = list(seen)
        step = max(1, math.ceil(len(distinct) / MAX_SCREENS_PER_KIND))
        picked = distinct[::step]
        times: list[float] = []
        for screen in picked:
            for _ in range(repeat):
                t0 = time.perf_counter_ns()
                render(screen, SIZE)
                times.append((time.perf_counter_ns() - t0) / 1000)
        times.sort()
        out[kind] = {
            "distinct": len(distinct),
            "rendered": len(picked),
            "renders": len(times),
            "mean_us": round(sum(times) / len(times), 1),
            "p50_us": round(percentile(times, 50), 1),
            "p99_us": round(percentile(times, 99), 1),
            "max_us": round(times[-1], 1),
        }
    return out


def machine() -> dict[str, Any]:
    """As bench/cpu.py reports it (not imported: it loads the daemons' test helpers)."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):  # x86; ARM (a Raspberry Pi) has Model
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return {
        "cpu_model": model or platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "arch": platform.machine(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def run(call_s: float, seed: int, repeat: int) -> dict[str, Any]:
    started = time.perf_counter()
    world, a, far = build(seed)
    handset = attach(world, a, config=HandsetConfig(soft_keys=True))
    render(handset.ui.screen(), SIZE)  # the font loads once, at start-up
    meter = Meter(lambda: world.sim.now, world.sim.now)
    shell = instrument(handset, meter)
    meter.watch_gc()
    try:
        handset.drive()  # as Handset.start does: the first screen is shown
        person = Person(world, handset, random.Random(seed))
        scenario(person, a, far, call_s)
    finally:
        meter.unwatch_gc()
    window_s = world.sim.now - meter.start
    periods = math.ceil(window_s / PERIOD_S - 1e-9)
    scenario_wall = time.perf_counter() - started

    loop_ns = [0] * periods
    render_ns = [0] * periods
    per_call: dict[str, list[int]] = defaultdict(list)
    per_period: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    renders: list[tuple[int, int]] = []
    "(ns, period) of each render."
    wall_total = cpu_total = 0
    for period, what, ns, cpu in meter.spans:
        k = min(period, periods - 1)  # a span at the window's very end
        per_call[what].append(ns)
        per_period[k][what] += ns
        wall_total += ns
        cpu_total += cpu
        if what == "render":
            render_ns[k] += ns
            renders.append((ns, k))
        else:
            loop_ns[k] += ns
    loop_us = [ns / 1000 for ns in loop_ns]
    with_render_us = [(lo + r) / 1000 for lo, r in zip(loop_ns, render_ns, strict=True)]
    busy = [us for us in loop_us if us > 0]
    figures = summary(loop_us, "loop_us")
    worst = sorted(range(periods), key=lambda k: loop_ns[k], reverse=True)[:WORST]

    overhead_wall, overhead_cpu = span_overhead_ns()
    bench_started = time.perf_counter()
    by_kind = render_bench(shell.screens, repeat)
    render_bench_wall = time.perf_counter() - bench_started

    return {
        **figures,
        **summary(with_render_us, "with_render_us"),
        "budget_us": BUDGET_US,
        "goal_met": figures["loop_us_p99"] <= BUDGET_US and figures["loop_us_mean"] <= BUDGET_US,
        "goal": "loop_us_p99 <= budget_us and loop_us_mean <= budget_us "
        "(UI time per 20 ms virtual period, render excluded, idle periods as 0)",
        "periods": periods,
        "busy_periods": len(busy),
        "loop_us_busy_mean": round(sum(busy) / len(busy), 2) if busy else 0.0,
        "loop_us_busy_p50": round(percentile(sorted(busy), 50), 1),
        "ui_calls": sum(len(v) for what, v in per_call.items() if what != "render"),
        "screens_rendered": len(renders),
        **summary([ns / 1000 for ns, _ in renders], "render_us"),
        "worst_renders": [
            {"t_s": round(k * PERIOD_S, 2), "us": round(ns / 1000, 1), "screen": kind}
            for (ns, k), kind in sorted(
                zip(renders, shell.rendered, strict=True), key=lambda r: -r[0][0]
            )[:WORST]
        ],
        "calls": {
            what: {
                "calls": len(v),
                "mean_us": round(sum(v) / len(v) / 1000, 2),
                "max_us": round(max(v) / 1000, 1),
                "total_ms": round(sum(v) / 1e6, 2),
            }
            for what, v in sorted(per_call.items())
        },
        "worst_periods": [
            {
                "t_s": round(k * PERIOD_S, 2),
                "loop_us": round(loop_ns[k] / 1000, 1),
                "render_us": round(render_ns[k] / 1000, 1),
                "what_us": {
                    what: round(ns / 1000, 1)
                    for what, ns in sorted(per_period[k].items(), key=lambda i: -i[1])
                },
            }
            for k in worst
        ],
        "gc_in_spans": gc_summary(meter.collections),
        "ui_wall_ms": round(wall_total / 1e6, 2),
        "ui_cpu_ms": round(cpu_total / 1e6, 2),
        "render_bench": by_kind,
        "span_overhead_ns": overhead_wall,
        "span_overhead_cpu_ns": overhead_cpu,
        "window_s": round(window_s, 2),
        "call_s": call_s,
        "key_presses": person.presses,
        "phone_events": len(per_call.get("phone_event", ())),
        "settings_saved": shell.settings_saved,
        "seed": seed,
        "repeat": repeat,
        "scenario_wall_s": round(scenario_wall, 2),
        "render_bench_wall_s": round(render_bench_wall, 2),
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="call length (default 60)")
    parser.add_argument("--seed", type=int, default=1, help="simulator and person (default 1)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=200,
        help="render_bench: renders of each screen (default 200)",
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    print(json.dumps(run(args.seconds, args.seed, args.repeat)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
