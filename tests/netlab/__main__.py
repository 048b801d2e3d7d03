"""``python -m netlab`` (from tests/): print the recipe blocks of docs/nat.md §3.2."""

from .nat import doc_rulesets, hairpin_lines

for name, ruleset in doc_rulesets().items():
    print(f"NatBehaviour.{name}:\n\n```nft\n{ruleset}```\n")
print("hairpin=True adds:\n\n```nft\n" + "\n".join(hairpin_lines()) + "\n```")
