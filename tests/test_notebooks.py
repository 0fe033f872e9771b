"""Execute every notebook in ``notebooks/`` top to bottom; any cell error fails the test.

Each runs in a fresh kernel with the test's temporary folder as working directory, export cache
and ``TMPDIR``, so nothing is written into the repository or the user's cache, and what a
notebook leaves behind in ``TMPDIR`` once its kernel stops fails the test. ``FASTUSS_NOTEBOOK_FAST=1``
lets a notebook run the test-sized model where a user runs the trained weights (notebook 1's ``FAST``).
"""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebook tests need the dev extra (nbclient, ipykernel)")
nbclient = pytest.importorskip("nbclient", reason="the notebook tests need the dev extra (nbclient, ipykernel)")
pytest.importorskip("ipykernel", reason="the notebook tests need the dev extra (nbclient, ipykernel)")

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT_S = 300


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 5, NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, monkeypatch):
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("FASTUSS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setenv("FASTUSS_NOTEBOOK_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    notebook = nbformat.read(path, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), (
        f"{path.name} is committed with outputs; clear them"
    )
    client = nbclient.NotebookClient(
        notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError (with the cell and traceback) on any error; stops the kernel
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert sorted(p.name for p in temp.glob("fastuss*")) == [], f"{path.name} leaves temporary folders behind"
