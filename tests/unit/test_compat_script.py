"""``scripts/compat.py`` chooses the (Airflow, Python) pairs of ``make compat`` from the files in ``constraints/``
(docs/compatibility.rst): every file is a pair, ``AIRFLOW_VERSION`` and ``PYTHON_VERSION`` filter, and a choice
that matches no file is an error naming the known pairs, never a run of nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.compat import CONSTRAINTS, pairs

FILES = (
    "airflow-3.0.6-py3.10.txt",
    "airflow-3.3.2-py3.13.txt",
    "airflow-3.3.2-py3.10.txt",
    "airflow-3.10.0-py3.12.txt",
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for name in FILES:
        (tmp_path / name).write_text("apache-airflow==0\n")
    (tmp_path / "README.txt").write_text("not a pair\n")
    return tmp_path


def names(chosen: list[tuple[str, str, Path]]) -> list[str]:
    return [f"{version}/{python}" for version, python, _ in chosen]


def test_no_choice_runs_every_pair_in_version_order(root: Path) -> None:
    assert names(pairs([], [], root)) == ["3.0.6/3.10", "3.3.2/3.10", "3.3.2/3.13", "3.10.0/3.12"]


def test_a_version_keeps_its_pairs_and_a_python_narrows_them(root: Path) -> None:
    assert names(pairs(["3.3.2"], [], root)) == ["3.3.2/3.10", "3.3.2/3.13"]
    assert names(pairs(["3.3.2"], ["3.13"], root)) == ["3.3.2/3.13"]
    assert names(pairs([], ["3.10"], root)) == ["3.0.6/3.10", "3.3.2/3.10"]


def test_the_file_of_a_pair_is_the_one_named_by_it(root: Path) -> None:
    [(_, _, path)] = pairs(["3.0.6"], ["3.10"], root)
    assert path == root / "airflow-3.0.6-py3.10.txt"


@pytest.mark.parametrize(
    ("versions", "pythons", "named"),
    [(["3.1.8"], [], "3.1.8"), (["3.0.6"], ["3.13"], "Python 3.13"), ([], ["3.9"], "Python 3.9")],
)
def test_a_choice_without_a_constraints_file_is_an_error_naming_the_known_pairs(
    root: Path, versions: list[str], pythons: list[str], named: str
) -> None:
    with pytest.raises(SystemExit, match=named) as raised:
        pairs(versions, pythons, root)
    assert "known pairs: 3.0.6/py3.10, 3.3.2/py3.10, 3.3.2/py3.13, 3.10.0/py3.12" in str(raised.value)


def test_the_repository_has_a_pair_on_every_python_of_the_classifiers() -> None:
    classifiers = (CONSTRAINTS.parent / "pyproject.toml").read_text()
    pythons = {python for _, python, _ in pairs([], [])}
    for python in ("3.10", "3.11", "3.12", "3.13"):
        assert f'"Programming Language :: Python :: {python}"' in classifiers
        assert python in pythons, f"Python {python} is a classifier but no constraints file tests it"
