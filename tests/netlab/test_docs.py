"""docs/nat.md says what the code does: its rulesets are the rendered recipes, verbatim, and
its path table is netlab.plan.EXPECTED. Pure text; needs no namespaces."""

from __future__ import annotations

from pathlib import Path

from netlab.nat import doc_rulesets, hairpin_lines
from netlab.plan import EXPECTED, KINDS

DOC = Path(__file__).resolve().parents[2] / "docs" / "nat.md"
MARKER = "<!-- plan:paths"


def _nft_blocks(text: str) -> list[str]:
    blocks = []
    for chunk in text.split("```nft\n")[1:]:
        blocks.append(chunk.split("```", 1)[0])
    return blocks


def test_docs_show_every_recipe_verbatim() -> None:
    blocks = _nft_blocks(DOC.read_text())
    for name, ruleset in doc_rulesets().items():
        assert ruleset in blocks, (
            f"docs/nat.md §3.2 is stale for {name}: `cd tests && python -m netlab` prints it"
        )
    assert "\n".join(hairpin_lines()) + "\n" in blocks


def test_docs_path_table_is_the_plan() -> None:
    text = DOC.read_text()
    assert MARKER in text
    rows: list[str] = []  # the table right after the marker, up to the first other line
    for line in text.split(MARKER, 1)[1].splitlines()[1:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    header, _, *body = rows
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert cells[1:] == list(KINDS)
    table = {}
    for line in body:
        first, *rest = (c.strip() for c in line.strip("|").split("|"))
        table[first.strip("*")] = rest
    assert list(table) == list(KINDS)
    for (x, y), path in EXPECTED.items():
        i, j = KINDS.index(x), KINDS.index(y)
        assert table[x][j] == path, (x, y)
        assert table[y][i] == path, (y, x)
