"""The README's results tables are generated from results/*.json (scripts/reproduce.sh), not typed."""
from __future__ import annotations

from pathlib import Path

from edgemod.results import readme_block, readme_block_in

PROJECT = Path(__file__).resolve().parent.parent


def test_readme_results_match_the_results_files():
    assert readme_block_in(PROJECT / "README.md") == readme_block(PROJECT / "results"), \
        "README results tables are stale or hand-edited: run `edgemod results readme`"
