"""The published documents agree with the files their numbers come from, and keep their shape.

``results/RESULTS.md`` is ``report``'s rendering of ``results/*.json``. The README's results table
quotes rate points of RESULTS.md's claim-1 table, and its Results section every headline figure of
RESULTS.md's targets table; the model card's evaluation tables are its per-rate summary and its
BD-rate table; the card's training table is the ``training.segments`` lists of the models' JSON
files, and its model table their sizes and totals. A re-run that updates the JSON files but not a
document (or a hand edit of a number) fails here, and so does a document that outgrows its length
or width budget, a changelog entry over one line, or a relative link to a file that is not there.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from dirac_demo.eval import report

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
ASSETS = ROOT / "assets"
MODELS = ("codec", "dirac_jpeg", "dirac_neural", "dirac_avif")


def _section(text: str, heading: str) -> list[str]:
    """The lines under the Markdown heading line ``heading``, up to the next heading of its level
    or above (``#`` lines inside code fences are not headings)."""
    lines = text.split("\n")
    start = lines.index(heading) + 1
    level = len(heading) - len(heading.lstrip("#"))
    fenced = False
    for i in range(start, len(lines)):
        if lines[i].startswith("```"):
            fenced = not fenced
        elif not fenced and lines[i].startswith("#"):
            if len(lines[i]) - len(lines[i].lstrip("#")) <= level:
                return lines[start:i]
    return lines[start:]


def _tables(text: str, heading: str) -> list[list[str]]:
    """The Markdown tables (each a list of lines) in the section under ``heading``."""
    tables: list[list[str]] = []
    previous = ""
    for line in _section(text, heading):
        if line.startswith("|"):
            if not previous.startswith("|"):
                tables.append([])
            tables[-1].append(line)
        previous = line
    return tables


def _rows(table: list[str]) -> list[list[str]]:
    """A table's body rows as lists of cells (header and separator dropped)."""
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in table[2:]]


def _steps(n: int) -> str:
    return f"{n:,}".replace(",", " ")


def _results() -> str:
    return (RESULTS / "RESULTS.md").read_text()


def _readme() -> str:
    return (ROOT / "README.md").read_text()


def _card() -> str:
    return (ASSETS / "MODEL_CARD.md").read_text()


def _meta(name: str) -> dict:
    return json.loads((ASSETS / f"{name}.json").read_text())


def test_results_md_is_the_report_of_the_result_files():
    sources = sorted(str(p) for p in RESULTS.glob("*.json"))
    assert report.render(report.load(sources)) == _results(), (
        "results/RESULTS.md is stale: python -m dirac_demo.eval.report --from results/*.json --out results/RESULTS.md")


def _normalise(text: str) -> str:
    """Text with Unicode minus signs as ``-``, no space before ``%`` and whitespace runs as one space."""
    return re.sub(r"\s+", " ", text.replace("\u2212", "-").replace(" %", "%"))


def _readme_results() -> str:
    return "\n".join(_section(_readme(), "## Results on Kodak"))


def test_readme_results_table_rows_are_the_reports():
    """Each row of the README's one results table is a row of the card's Kodak summary (as derived
    from RESULTS.md), and every codec of that summary has a row."""
    tables = _tables(_readme(), "## Results on Kodak")
    assert len(tables) == 1, "the README's Results section should hold exactly one table"
    rows, expected = _rows(tables[0]), expected_summary_rows()
    for row in rows:
        assert row in expected, f"the README's results row {row} is not in results/RESULTS.md"
    assert {r[0] for r in rows} == {r[0] for r in expected}, "the README's results table misses a codec"


def _targets_measured() -> list[str]:
    """The 'measured' cells of RESULTS.md's targets table."""
    table = _tables(_results(), "### Targets")[0]
    column = [c.strip() for c in table[0].strip().strip("|").split("|")].index("measured")
    return [row[column] for row in _rows(table)]


def test_readme_results_state_the_reports_headline_figures():
    """The README states as results what RESULTS.md's targets table measures: its bold figures, the
    seconds per step, and how many rate points fall monotonically in PSNR and in SWD."""
    text, measured = _normalise(_readme_results()), _targets_measured()
    figures = [_normalise(f) for cell in measured for f in re.findall(r"\*\*(.+?)\*\*", cell)]
    figures += [f"{s} s" for cell in measured for s in re.findall(r"([\d.]+) s/step", cell)]
    smooth = next(cell for cell in measured if "falls from step 1" in cell)
    figures += [f"{a} of {b}" for a, b in re.findall(r"(\d+) of (\d+)", smooth)]
    figures += [_normalise(r) for r in re.findall(r"rise ([+-][\d.]+ ?%)", smooth)]
    assert len(figures) >= 10, f"RESULTS.md's targets table changed shape: {figures}"
    for figure in figures:
        assert figure in text, f"the README's Results section does not state {figure!r} (results/RESULTS.md)"


def expected_summary_rows() -> list[list[str]]:
    """The card's Kodak summary, derived from RESULTS.md's claim-1 table: every rate point with
    DIRAC steps on the whole test set, as codec, rate, bpp, then PSNR / SWD of the base, the
    first and the last step."""
    claim1 = _tables(_results(), "### Claim 1: DIRAC-1 keeps PSNR, DIRAC-S improves realism")[0]
    head = [c.strip() for c in claim1[0].strip().strip("|").split("|")]
    points = [dict(zip(head, cells)) for cells in _rows(claim1)]
    images = max(int(p["images"]) for p in points)
    rows = []
    for p in points:
        if p["DIRAC-1 PSNR"] == "–" or int(p["images"]) != images:
            continue
        kind, value = p["rate"].split()
        rate = {"qf": "QF", "lmbda": "λ", "quality": "quality"}[kind] + " " + value
        last_psnr = p["DIRAC-S PSNR"].split(" (")[0]
        rows.append((p["codec"], float(value), [
            p["codec"], rate, p["bpp"], f"{p['base PSNR']} / {p['base SWD']}",
            f"{p['DIRAC-1 PSNR']} / {p['DIRAC-1 SWD']}", f"{last_psnr} / {p['DIRAC-S SWD']}"]))
    return [r for _, _, r in sorted(rows, key=lambda r: (r[0], r[1]))]


def test_model_card_evaluation_tables_are_the_reports():
    summary, bd = _tables(_card(), "## Evaluation on Kodak")[:2]
    assert _rows(summary) == expected_summary_rows(), "the model card's Kodak summary is stale"
    assert bd == _tables(_results(), "### BD-rate")[0], "the model card's BD-rate table is stale"


def test_model_card_training_table_is_the_segments():
    """model, steps from–to, hardware, batch × crop (checked where the JSON records it), hours."""
    got = _rows(_tables(_card(), "## Training")[0])
    want = []
    for name in MODELS:
        for s in _meta(name)["training"]["segments"]:
            batch = f"{s['batch']} × {s['crop']}²" if "batch" in s and "crop" in s else None
            want.append([f"`{name}`", f"{_steps(s['from_step'])}–{_steps(s['to_step'])}", s["hardware"],
                         batch, f"{s['hours']:g}"])
    assert len(got) == len(want), "the model card's training table has other segments than the JSON files"
    for row, expect in zip(got, want):
        assert row == [c if c is not None else row[i] for i, c in enumerate(expect)], (
            f"the model card's training row {row} differs from the JSON's {expect}")


def test_model_card_model_table_is_the_files():
    """file, what, parameters, size (MB of the .safetensors file), training steps, hours."""
    rows = {r[0]: r for r in _rows(_tables(_card(), "## Models")[0])}
    assert set(rows) == {f"`{name}.safetensors`" for name in MODELS}
    for name in MODELS:
        row, training = rows[f"`{name}.safetensors`"], _meta(name)["training"]
        size = (ASSETS / f"{name}.safetensors").stat().st_size / 1e6
        assert row[3:] == [f"{size:.1f} MB", _steps(training["steps"]), f"{training['wall_hours']:g}"], (
            f"the model card's row for {name} is stale")


DOCUMENTS = ("README.md", "assets/MODEL_CARD.md", "CHANGELOG.md")
WIDTH = 110


def _documents() -> list[Path]:
    return [ROOT / name for name in DOCUMENTS] + sorted((ROOT / "docs" / "findings").glob("*.md"))


def test_documents_keep_their_length():
    assert len(_readme().splitlines()) <= 200, "README.md is over 200 lines"
    assert len(_card().splitlines()) <= 150, "assets/MODEL_CARD.md is over 150 lines"


def test_documents_keep_their_width():
    """No line of the README, the model card, the changelog or a findings page is over 110
    characters, tables and code included."""
    for path in _documents():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert len(line) <= WIDTH, (
                f"{path.relative_to(ROOT)}:{number} is {len(line)} characters wide (at most {WIDTH})")


def test_changelog_entries_are_one_line_each():
    """An entry is one ``- `` line: no wrapped continuation (an indented table under an entry is fine)."""
    lines = (ROOT / "CHANGELOG.md").read_text().splitlines()
    for number, line in enumerate(lines, 1):
        assert not (line.startswith("  ") and not line.lstrip().startswith("|")), (
            f"CHANGELOG.md:{number} continues an entry on a second line")
    assert sum(line.startswith("- ") for line in lines) >= 20, "CHANGELOG.md lost its entries"


def test_findings_are_split_by_topic_and_indexed():
    """docs/findings/ holds one page per topic, each linked from its index; no single findings file."""
    folder = ROOT / "docs" / "findings"
    assert not (ROOT / "docs" / "findings.md").exists(), "docs/findings.md is split into docs/findings/"
    index = (folder / "README.md").read_text()
    pages = [p.name for p in folder.glob("*.md") if p.name != "README.md"]
    assert len(pages) >= 5, "docs/findings/ should hold one page per topic"
    for name in pages:
        assert f"]({name})" in index, f"docs/findings/README.md does not link {name}"


def _link_targets(path: Path) -> list[str]:
    """The relative link targets of a Markdown file (code blocks, URLs and bare anchors left out)."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    return [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


def test_relative_links_reach_files():
    """Every relative link in the README, card, changelog, results/README.md and docs/ names a file
    or folder that exists."""
    paths = _documents() + [ROOT / "results" / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
    for path in paths:
        for target in _link_targets(path):
            assert (path.parent / target).exists(), (
                f"{path.relative_to(ROOT)} links to {target}, which is missing")
