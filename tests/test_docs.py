"""The published numbers agree with the result files they are generated from.

``results/RESULTS.md`` is ``report``'s rendering of ``results/*.json``; the README's Results
section carries it verbatim, and the model card repeats its targets table. A re-run that updates
the JSON files but not one of the documents (or a hand edit of a number) fails here.
"""
from __future__ import annotations

from pathlib import Path

from dirac_demo.eval import report

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"


def _table(text: str, title: str) -> str:
    """The Markdown table right under the heading ``### title``."""
    lines = text[text.index(f"### {title}\n"):].split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end])


def test_results_md_is_the_report_of_the_result_files():
    sources = sorted(str(p) for p in RESULTS.glob("*.json"))
    assert report.render(report.load(sources)) == (RESULTS / "RESULTS.md").read_text(), (
        "results/RESULTS.md is stale: python -m dirac_demo.eval.report --from results/*.json --out results/RESULTS.md")


def test_readme_carries_the_results_verbatim():
    results = (RESULTS / "RESULTS.md").read_text()
    readme = (ROOT / "README.md").read_text()
    start = readme.index("### Setup\n", readme.index("## Results"))
    assert readme[start:start + len(results)] == results, "README's Results section differs from results/RESULTS.md"


def test_model_card_targets_table_is_the_reports():
    results = (RESULTS / "RESULTS.md").read_text()
    card = (ROOT / "assets" / "MODEL_CARD.md").read_text()
    title = "Targets (issue 3)"
    assert _table(card, title) == _table(results, title), "the model card's targets table is stale"
