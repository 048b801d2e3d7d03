"""The docs drawn from the code (``scripts/diagrams``) match the code: the state machines in
docs/state-machines.md are the transition tables, and design.md's module map is the tree.

A doc edited by hand, or a table or module changed without running ``scripts/diagrams``,
fails here with the command to run.
"""

import importlib.machinery
import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest

from peerline.proto.call.state import TRANSITIONS as CALL_TRANSITIONS
from peerline.proto.call.state import CallState
from peerline.proto.machines import machines

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "diagrams"


def diagrams() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("peerline_diagrams", str(SCRIPT))
    spec = importlib.util.spec_from_loader("peerline_diagrams", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_state_machine_diagrams_are_drawn_from_the_tables() -> None:
    d = diagrams()
    assert d.STATE_MACHINES.read_text() == d.state_machines(), "run scripts/diagrams"


def test_the_module_map_in_design_md_is_drawn_from_the_tree() -> None:
    d = diagrams()
    text = d.DESIGN.read_text()
    assert d.design_with_map(text) == text, "run scripts/diagrams"


def test_the_check_fails_on_a_diagram_edited_by_hand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = diagrams()
    for name in ("STATE_MACHINES", "DESIGN"):
        copy = tmp_path / getattr(d, name).name
        shutil.copy(getattr(d, name), copy)
        monkeypatch.setattr(d, name, copy)
    assert d.main(["--check"]) == 0
    edited = d.STATE_MACHINES.read_text().replace("ringback --> active", "ringback --> ended")
    d.STATE_MACHINES.write_text(edited)
    assert d.main(["--check"]) == 1
    assert d.main([]) == 0 and d.main(["--check"]) == 0  # redrawn


def test_every_machine_is_listed_and_its_table_names_each_of_its_states() -> None:
    """A state no transition leads to or from would be a state the code sets by hand."""
    names = [m.name for m in machines()]
    assert len(names) == len(set(names)) >= 6
    assert {nxt for nxt in CALL_TRANSITIONS.values()} == set(CallState)
    for machine in machines():
        if machine.name.startswith("Noise"):
            continue  # one table per role: each role passes through only its own states
        named = {s for s, _, _ in machine.transitions if s is not None}
        named |= {n for _, _, n in machine.transitions}
        kind = type(machine.transitions[0][2])
        assert named == set(kind), (machine.name, set(kind) - named)
