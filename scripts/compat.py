"""Build (or reuse) one virtualenv per (Airflow, Python) pair from its pinned constraints and run the suites.

``make compat`` runs every pair of the compatibility table (docs/compatibility.rst): one pair per file
``constraints/airflow-<version>-py<python>.txt``. ``make compat AIRFLOW_VERSION=3.0.6`` runs the pairs of one
Airflow line, ``PYTHON_VERSION=3.12`` keeps only the pairs on that Python, both together name one pair.
For each pair:

* the constraints file is a ``pip freeze --exclude-editable`` of a venv where the suites passed on that pair
  (Airflow's own constraints are not fetched); its first lines say how it differs from a plain install;
* the venv lives in ``.venv-compat/<version>-py<python>/`` and is rebuilt only when the constraints file or
  ``pyproject.toml`` change (the stamp file's name is a hash of both);
* the suites run with that venv's Python through ``scripts/run_pytest.py`` (no tests collected fails).

Only the standard library is used: it runs before any venv exists.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONSTRAINTS = REPO / "constraints"
DEFAULT_TESTS = ["tests/unit", "tests/emulator", "tests/integration", "tests/e2e/test_watcher_restart.py"]


def pairs(versions: list[str], pythons: list[str], root: Path = CONSTRAINTS) -> list[tuple[str, str, Path]]:
    """The (Airflow, Python, constraints file) pairs to run, in version order.

    Every ``airflow-<version>-py<python>.txt`` under ``root`` is a pair; ``versions`` and ``pythons`` (empty: all)
    keep only those. Asking for a version or a Python that no file has is an error naming the known pairs,
    never a silent empty run.
    """
    known: list[tuple[str, str, Path]] = []
    for path in root.glob("airflow-*-py*.txt"):
        version, python = path.stem.removeprefix("airflow-").rsplit("-py", 1)
        known.append((version, python, path))
    known.sort(key=lambda pair: (_key(pair[0]), _key(pair[1])))
    chosen = [p for p in known if (not versions or p[0] in versions) and (not pythons or p[1] in pythons)]
    missing = [v for v in versions if not any(p[0] == v for p in chosen)]
    missing += [f"Python {py}" for py in pythons if not any(p[1] == py for p in chosen)]
    if missing or not chosen:
        names = ", ".join(f"{v}/py{py}" for v, py, _ in known) or "none"
        raise SystemExit(
            f"compat: no constraints/airflow-<version>-py<python>.txt for {', '.join(missing) or 'this choice'}"
            f" (versions {versions or 'any'}, Pythons {pythons or 'any'}); known pairs: {names}"
        )
    return chosen


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def interpreter(python: str) -> str:
    """A working ``python<X.Y>``: ``$PYTHON<X_Y>`` (e.g. ``PYTHON3_10``), the PATH, or a pyenv install."""
    override = os.environ.get(f"PYTHON{python.replace('.', '_')}")
    candidates = [override] if override else []
    candidates.append(shutil.which(f"python{python}"))
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{python}*/bin/python{python}")))
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys, venv"], capture_output=True)
        if probe.returncode == 0:
            return candidate
    raise SystemExit(f"compat: no working python{python} found (set PYTHON{python.replace('.', '_')}=/path)")


def ensure_venv(version: str, constraints: Path, python: str, root: Path) -> Path:
    venv = root / f"{version}-py{python}"
    key = hashlib.sha256(constraints.read_bytes() + (REPO / "pyproject.toml").read_bytes()).hexdigest()[:16]
    stamp = venv / f".installed-{key}"
    bin_dir = venv / "bin"
    if stamp.exists():
        print(f"compat: reusing {venv} (Airflow {version}, Python {python})", flush=True)
        return bin_dir
    print(f"compat: building {venv} from {constraints.relative_to(REPO)}", flush=True)
    if not (bin_dir / "python").exists():
        subprocess.run([interpreter(python), "-m", "venv", str(venv)], check=True)
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run(
        [*pip, "-c", str(constraints), f"apache-airflow=={version}", "-e", f"{REPO}[dev]"],
        check=True,
        cwd=REPO,
    )
    for old in venv.glob(".installed-*"):
        old.unlink()
    stamp.touch()
    return bin_dir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="-- PYTEST_ARGS: passed on")
    parser.add_argument("versions", nargs="*", help="Airflow versions (default: every line in constraints/)")
    parser.add_argument(
        "--python",
        action="append",
        default=[],
        help="Python X.Y (repeatable; default: every one of the line)",
    )
    parser.add_argument("--venvs", default=str(REPO / ".venv-compat"), help="where the venvs are kept")
    parser.add_argument("--tests", default=" ".join(DEFAULT_TESTS), help="pytest paths, space separated")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    extra = argv[split + 1 :]  # after --: more pytest arguments
    results: list[tuple[str, int]] = []
    pythons = [py for value in args.python for py in value.split()]
    for version, python, constraints in pairs(args.versions, pythons):
        bin_dir = ensure_venv(version, constraints, python, Path(args.venvs).resolve())
        print(f"compat: Airflow {version} on Python {python}: pytest {args.tests}", flush=True)
        code = subprocess.call(
            [str(bin_dir / "python"), "scripts/run_pytest.py", *args.tests.split(), "-q", *extra], cwd=REPO
        )
        results.append((f"Airflow {version} / Python {python}", code))
    for line, code in results:
        print(f"compat: {line}: {'passed' if code == 0 else f'FAILED (exit {code})'}")
    return 0 if all(code == 0 for _, code in results) else 1


if __name__ == "__main__":
    sys.exit(main())
