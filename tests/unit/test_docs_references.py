"""Every document the code cites exists in the repository (issue 13, item 6).

Docstrings and comments say *why* by citing a document. Those documents must travel with the code: a
citation of a notes file that lives outside the repository (the team's background notes) is a dead link for
everyone who installs or clones the project, so such names are refused here, and every ``docs/...`` path
that is cited must exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCANNED = ("airflow_provider_altinn_events", "tests", "scripts", "benchmarks", "example_dags", "docs")
SUFFIXES = {".py", ".rst", ".md", ".toml", ".cfg", ".yaml", ".yml"}
# The background notes the project started from, which are not part of the repository, by their names in
# lower case: the checker must know them, but should not itself read as a citation of them.
_NOTES = ("contract", "design", "airflow-notes", "performance-notes", "anchors")
OUTSIDE = re.compile(r"\b(" + "|".join(re.escape(n.upper()) for n in _NOTES) + r")(\.md)?\b")
# Any other notes file cited by name (an upper-case ``NAME.md``) must be one the repository has.
CITED_NOTES_FILE = re.compile(r"\b[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*\.md\b")
CITED_DOC = re.compile(r"\bdocs/[\w./-]+?\.(?:rst|md)\b")
# The citation form (docs/contract.rst intro): (docs/contract.rst, "contract-paging"), labels after commas.
CITED_LABELS = re.compile(r'\b(docs/[\w./-]+?\.rst)((?:\s*,\s*"[\w-]+")+)')


def _files() -> list[Path]:
    found = []
    for top in SCANNED:
        for path in sorted((REPO / top).rglob("*")):
            if path.suffix in SUFFIXES and "_build" not in path.parts and path.is_file():
                found.append(path)
    found += [REPO / name for name in ("README.md", "CONTRIBUTING.md", "SECURITY.md", "pyproject.toml")]
    return found


FILES = _files()
THIS = Path(__file__).resolve()


def test_the_scan_sees_the_tree() -> None:
    """Guard against a scan that silently finds nothing (a moved folder would make the checks vacuous)."""
    assert len(FILES) > 100
    assert any(p.name == "matching.py" for p in FILES)


def _lines(text: str, match: re.Match[str]) -> int:
    return text.count("\n", 0, match.start()) + 1


def _found(pattern: re.Pattern[str]) -> Iterator[tuple[str, re.Match[str]]]:
    """Every match of ``pattern`` in the repository's files but this one, with ``file:line`` where it stands."""
    for path in FILES:
        if path.resolve() == THIS:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in pattern.finditer(text):
            yield f"{path.relative_to(REPO)}:{_lines(text, m)}", m


def test_no_citation_of_notes_outside_the_repository() -> None:
    hits = [
        f"{where}: {m.group(0)}"
        for where, m in _found(OUTSIDE)
        # the design note's bare name is an ordinary word; it is cited with ".md" (the others bare too)
        if m.group(0) != _NOTES[1].upper()
    ]
    assert not hits, "citations of notes that are not in the repository (cite docs/ instead):\n" + "\n".join(
        hits
    )


def test_cited_notes_files_exist_in_the_repository() -> None:
    """README.md, CHANGELOG.md and the like travel with the code; a ``NAME.md`` that does not (a hand-over file
    on one machine) is a dead citation."""
    present = {p.name for p in REPO.glob("*.md")} | {p.name for p in (REPO / "docs").rglob("*.md")}
    missing = [f"{where}: {m.group(0)}" for where, m in _found(CITED_NOTES_FILE) if m.group(0) not in present]
    assert not missing, "citations of notes files that are not in the repository:\n" + "\n".join(missing)


def test_cited_docs_exist() -> None:
    missing = [
        f"{where}: {m.group(0)}" for where, m in _found(CITED_DOC) if not (REPO / m.group(0)).is_file()
    ]
    assert not missing, "citations of documents that do not exist:\n" + "\n".join(missing)


def test_cited_labels_exist() -> None:
    """A citation names a section by its Sphinx label (or its title); the cited page must have it."""
    cited = 0
    missing = []
    for where, m in _found(CITED_LABELS):
        doc = REPO / m.group(1)
        lines = doc.read_text(encoding="utf-8").splitlines() if doc.is_file() else []
        targets = {line[4:-1] for line in lines if line.startswith(".. _") and line.endswith(":")}
        targets |= {
            a
            for a, b in zip(lines, lines[1:], strict=False)
            if a and set(b) <= set("=-~^") and len(b) >= len(a)
        }
        for label in re.findall(r'"([\w-]+)"', m.group(2)):
            cited += 1
            if label not in targets:
                missing.append(f"{where}: {m.group(1)} has no label {label!r}")
    assert cited > 20, "the citation form was not found: has it changed?"
    assert not missing, "citations of sections that do not exist:\n" + "\n".join(missing)
