"""The docs tell the truth about the tree: every path they name exists, and they cite only what a reader has."""

from __future__ import annotations

import re

import pytest

from tests.repo import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted(ROOT.glob("*/README.md"))]
SOURCES = [
    *DOCS,
    ROOT / "template.yaml",
    *sorted(ROOT.joinpath("rental_analytics").rglob("*.py")),
    *sorted(ROOT.joinpath("spark_scripts").glob("*.py")),
    *sorted(ROOT.joinpath("functions").rglob("*.py")),
]
CITED_PATH = re.compile(
    r"`((?:rental_analytics|spark_scripts|functions|tests|statemachine|benchmarks|events)/[\w./-]+)`"
)
# "seed" alone is a random seed here; these are the ways the design documents were cited.
CITES_A_SEED = re.compile(r"\bseed's\b|\bseeds\b|\bseed,? (?:section|§)|§\s?\d")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_a_doc_names_exists(doc):
    missing = [path for path in CITED_PATH.findall(doc.read_text()) if not (ROOT / path.rstrip("/")).exists()]
    assert missing == []


def test_nothing_cites_the_documents_the_project_was_created_from():
    # A reader of this repository has docs/ and the contracts, not the design documents behind them.
    citing = [str(p.relative_to(ROOT)) for p in SOURCES if CITES_A_SEED.search(p.read_text())]
    assert citing == []


@pytest.mark.parametrize("name", ["car-rental-contract.md", "apartments-contract.md"])
def test_the_contracts_in_docs_are_the_design_contracts(name):
    design = ROOT.parent / "shared" / "design" / name
    if not design.is_file():
        pytest.skip("the design folder is not beside this checkout")
    assert (ROOT / "docs" / "contracts" / name).read_text() == design.read_text()
