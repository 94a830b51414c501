"""An earlier commit of Floopy, runnable beside the checkout in the same bench run
(``--baseline REF``): the ``floopy-baseline`` and ``floopy-nolog-baseline`` targets.

The commit's ``python/`` tree is exported into the scratch directory and served with
``PYTHONPATH`` pointing at it, by the same interpreter and dependencies as the checkout. Its
native module is the checkout's own when the Rust sources are the same at both commits, and
is built from the commit (``maturin build --release``, sharing the checkout's cargo target
directory) when they differ.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NATIVE_SOURCES = ("rust", "Cargo.toml", "Cargo.lock")
SUFFIX = "-baseline"


def export(ref: str, scratch: Path) -> Path:
    """The ``python/`` directory of ``ref``, with a native module that matches it."""
    commit = _git("rev-parse", "--short", ref).strip()
    tree = scratch / f"baseline-{commit}"
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref], cwd=ROOT, check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    package = tree / "python" / "floopy"
    if _same_native_sources(ref):
        print(f"baseline {commit}: the checkout's native module (same Rust sources)")
        for built in (ROOT / "python" / "floopy").glob("_native*.so"):
            shutil.copy2(built, package / built.name)
    else:
        print(f"baseline {commit}: building its native module (the Rust sources differ)")
        _build_native(tree, package)
    return tree / "python"


def _same_native_sources(ref: str) -> bool:
    done = subprocess.run(
        ["git", "diff", "--quiet", ref, "HEAD", "--", *NATIVE_SOURCES], cwd=ROOT, check=False
    )
    return done.returncode == 0


def _build_native(tree: Path, package: Path) -> None:
    dist = tree / "dist"
    maturin = Path(sys.executable).with_name("maturin")
    subprocess.run(
        [str(maturin), "build", "--release", "-q", "-o", str(dist)],
        cwd=tree,
        check=True,
        env={**os.environ, "CARGO_TARGET_DIR": str(ROOT / "target" / "baseline")},
    )
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.startswith("floopy/_native") and name.endswith(".so"):
                (package / Path(name).name).write_bytes(archive.read(name))


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
