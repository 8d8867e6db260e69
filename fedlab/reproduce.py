"""Execute every lesson notebook with papermill and print one summary table.

``make reproduce`` runs ``python -m fedlab.reproduce``: each ``notebooks/NN_*.ipynb`` is executed
with the chosen preset into ``outputs/<notebook>/`` (the executed notebook, results.csv and
summary.json). A notebook that fails does not stop the others; the command exits non-zero and
names it, and its partial output notebook is kept for inspection. Progress bars are off in these
unattended runs (``TQDM_DISABLE=1`` unless set): the executed notebooks show each run's summary line.

With ``--jobs 2`` (the default on a machine with at least 2 cores) two notebooks run at once, each kernel
with its share of the cores (``OMP_NUM_THREADS``, unless set): the classroom models are too small for two
threads to speed one of them up much, so two one-thread kernels finish the lessons sooner. A notebook that
reuses another's runs from the run cache (:data:`REUSES`) starts only after that one has finished.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]

#: Notebook prefix -> the prefixes whose runs it takes from the run cache (it starts after them): 02 reuses
#: 01's Local and FedAvg runs, 03 reuses 02's baselines.
REUSES: dict[str, tuple[str, ...]] = {"02": ("01",), "03": ("01", "02")}


def find_notebooks(notebooks_dir: str | Path) -> list[Path]:
    """The numbered lesson notebooks (``NN_topic.ipynb``), in order."""
    paths = sorted(p for p in Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"No notebooks named NN_topic.ipynb in {notebooks_dir}")
    return paths


def summary_table(output_root: str | Path, names: list[str]) -> pd.DataFrame:
    """One row per notebook from its summary.json: preset, data, wall time and headline numbers."""
    rows = []
    for name in names:
        path = Path(output_root) / name / "summary.json"
        if not path.exists():
            rows.append({"notebook": name, "status": "no summary.json"})
            continue
        s = json.loads(path.read_text())
        row = {"notebook": name, "status": "ok", "preset": s.get("preset"),
               "data": "synthetic" if s.get("synthetic") else "real", "wall_time_s": s.get("wall_time_s")}
        for key, value in (s.get("headline") or {}).items():
            row[key] = round(value, 3) if isinstance(value, float) else value
        rows.append(row)
    return pd.DataFrame(rows)


def run_notebook(notebook: Path, out_dir: Path, preset: str) -> None:
    """Execute one lesson with papermill into ``out_dir`` (executed copy, results.csv, summary.json).

    The kernel runs in the notebook's folder, as under JupyterLab; ``OUTPUT_DIR`` is set explicitly.

    Raises:
        papermill.PapermillExecutionError: when a cell fails (the partial notebook is kept in ``out_dir``).
    """
    import papermill as pm

    out_dir.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(str(notebook), str(out_dir / notebook.name), cwd=str(notebook.parent),
                        parameters={"PRESET": preset, "OUTPUT_DIR": str(out_dir.resolve())},
                        progress_bar=False, kernel_name="python3")


def usable_cores() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def kernel_threads(jobs: int) -> int:
    """CPU threads each of ``jobs`` notebook kernels gets: its share of :func:`usable_cores` (at least 1)."""
    return max(1, usable_cores() // jobs)


def _prefix(notebook: Path) -> str:
    return notebook.stem.split("_", 1)[0]


def schedule_ready(pending: list[Path], finished: set[str], running: set[str]) -> Path | None:
    """The first pending notebook whose :data:`REUSES` have finished (or are not being run at all)."""
    planned = {_prefix(p) for p in pending} | running
    for nb in pending:
        needs = [n for n in REUSES.get(_prefix(nb), ()) if n in planned]
        if all(n in finished for n in needs):
            return nb
    return None


def _run_in_subprocess(notebook: Path, out_dir: Path, preset: str, threads: int) -> tuple[bool, float]:
    """Execute one notebook in its own Python process (its log in ``out_dir/reproduce.log``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, str(threads))
    command = [sys.executable, "-m", "fedlab.reproduce", "--preset", preset, "--output-root", str(out_dir.parent),
               "--only", notebook.stem, "--jobs", "1", "--notebooks-dir", str(notebook.parent)]
    tic = time.perf_counter()
    with open(out_dir / "reproduce.log", "w") as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, check=False).returncode
    return code == 0, time.perf_counter() - tic


def run_parallel(notebooks: list[Path], output_root: Path, preset: str, jobs: int) -> dict[str, tuple[bool, float]]:
    """Run the notebooks ``jobs`` at a time, each after the notebooks it reuses.

    Returns:
        ``{notebook stem: (succeeded, seconds end to end)}`` in the order they finished.
    """
    threads = kernel_threads(jobs)
    pending, finished, outcome = list(notebooks), set(), {}
    running: dict[Future, Path] = {}
    print(f"running {jobs} notebooks at a time, {threads} CPU thread(s) each; "
          "each notebook's log: <output>/<notebook>/reproduce.log", flush=True)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        while pending or running:
            while len(running) < jobs:
                nb = schedule_ready(pending, finished, {_prefix(p) for p in running.values()})
                if nb is None:
                    break
                pending.remove(nb)
                print(f"== {nb.stem} (preset={preset}) -> {output_root / nb.stem}", flush=True)
                running[pool.submit(_run_in_subprocess, nb, output_root / nb.stem, preset, threads)] = nb
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                nb = running.pop(future)
                ok, seconds = future.result()
                finished.add(_prefix(nb))
                outcome[nb.stem] = (ok, seconds)
                print(f"   {nb.stem} {'done' if ok else 'FAILED'} in {seconds:.0f} s"
                      + ("" if ok else f" (see {output_root / nb.stem / 'reproduce.log'})"), flush=True)
    return outcome


def reproduce(preset: str = "classroom", notebooks_dir: str | Path | None = None,
              output_root: str | Path | None = None, only: list[str] | None = None, jobs: int = 1) -> int:
    """Execute the notebooks; return 0 if all succeeded, else 1.

    Args:
        preset: "smoke", "classroom" or "paper".
        notebooks_dir: Folder with the notebooks (default: the checkout's ``notebooks/``).
        output_root: Results go to ``output_root/<notebook>/`` (default: ``fedlab.notebook.default_output_root``,
            the checkout's ``outputs/``, the place a notebook run from JupyterLab writes to).
        only: Restrict to notebooks whose name starts with one of these prefixes (e.g. ["01"]).
        jobs: Notebooks run at once (each in its own process when > 1, after the notebooks it reuses).
    """
    from fedlab.notebook import default_output_root

    notebooks_dir = Path(notebooks_dir or REPO_ROOT / "notebooks")
    notebooks = find_notebooks(notebooks_dir)
    output_root = Path(output_root) if output_root else default_output_root(notebooks_dir)
    if only:
        notebooks = [p for p in notebooks if any(p.stem.startswith(o) for o in only)]
    if jobs > 1 and len(notebooks) > 1:
        outcome = run_parallel(notebooks, Path(output_root), preset, jobs)
        failed = [nb.stem for nb in notebooks if not outcome[nb.stem][0]]
    else:
        failed = []
        for nb in notebooks:
            out_dir = Path(output_root) / nb.stem
            print(f"== {nb.stem} (preset={preset}) -> {out_dir}", flush=True)
            tic = time.perf_counter()
            try:
                run_notebook(nb, out_dir, preset)
            except Exception as err:  # keep going: one broken lesson must not hide the others' results
                failed.append(nb.stem)
                print(f"   FAILED after {time.perf_counter() - tic:.0f} s: {type(err).__name__}: {str(err)[:500]}")
                continue
            print(f"   done in {time.perf_counter() - tic:.0f} s")
    table = summary_table(output_root, [p.stem for p in notebooks])
    base = [c for c in ("notebook", "status", "preset", "data", "wall_time_s") if c in table.columns]
    print("\n" + table[base].to_string(index=False))
    for _, row in table.iterrows():  # headline numbers, one notebook at a time (they differ per lesson)
        extra = {k: v for k, v in row.items() if k not in base and not (isinstance(v, float) and pd.isna(v))}
        if extra:
            print(f"\n{row['notebook']} ({row.get('data', '')}):")
            for key, value in extra.items():
                print(f"  {key:<32} {value}")
    if failed:
        print(f"\nFailed notebooks: {failed}. Open {output_root}/<notebook>/<notebook>.ipynb to see the error.")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (``python -m fedlab.reproduce``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="classroom", choices=["smoke", "classroom", "paper"])
    parser.add_argument("--output-root", default=None,
                        help="default: $FEDLAB_OUTPUT_ROOT, else outputs/ in the checkout")
    parser.add_argument("--only", nargs="*", help="notebook prefixes, e.g. 01 03")
    parser.add_argument("--jobs", type=int, default=min(2, usable_cores()),
                        help="notebooks run at once (default: 2 on a machine with 2 or more cores)")
    parser.add_argument("--notebooks-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    # Nobody watches these kernels: the executed copies keep the runs' one-line summaries, without the bars'
    # in-place updates. Set TQDM_DISABLE=0 to keep bars.
    os.environ.setdefault("TQDM_DISABLE", "1")
    return reproduce(args.preset, notebooks_dir=args.notebooks_dir, output_root=args.output_root, only=args.only,
                     jobs=args.jobs)


if __name__ == "__main__":
    sys.exit(main())
