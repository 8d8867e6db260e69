"""Wall time of every lesson notebook, run with papermill one after another as ``make reproduce`` runs them.

For each notebook: the time inside the notebook (``wall_time_s`` of its summary.json, from
``start_run`` to ``finish``) and the end-to-end time of the papermill call (kernel start-up,
imports and every cell). Writes ``bench/results/notebooks_<preset>.json`` naming the machine (CPU
model, cores, torch threads, GPU, load average), the date, the git commit and the command, so that
every time the README or a notebook promises can be traced to a file. These are times on one
machine, not ratios: compare them only with times measured on the same machine.

    python bench/bench_notebooks.py --preset smoke
    python bench/bench_notebooks.py --preset classroom --only 01 02
    python bench/bench_notebooks.py --preset classroom --jobs 2   # as make reproduce on 2 cores: 2 at a time

With ``--jobs 2`` the per-notebook times are those of two notebooks sharing the machine; the total is
what ``make reproduce`` takes (without its one-off installation).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def machine() -> dict:
    """CPU model, cores, torch threads, GPU, load and versions of the machine the times come from."""
    import torch

    from fedlab.reproduce import usable_cores

    cpu_model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    usable = usable_cores()
    gpu = None
    if torch.cuda.is_available():
        gpu = {"name": torch.cuda.get_device_name(0), "count": torch.cuda.device_count(),
               "cuda": torch.version.cuda}
    return {
        "cpu_model": cpu_model,
        "cpu_cores": os.cpu_count(),
        "cpu_cores_usable": usable,
        "torch_threads": torch.get_num_threads(),  # what a kernel started with this environment gets
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "gpu": gpu,
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def _memory_gib() -> float | None:
    meminfo = Path("/proc/meminfo")
    if not meminfo.exists():
        return None
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 2**20, 1)
    return None


def git_commit() -> dict:
    """The commit measured, and whether the working tree differed from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False).stdout.strip()

    commit = git("rev-parse", "HEAD")
    return {"commit": commit or None, "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def load_average() -> float | None:
    """The 1-minute load average (other work on the machine slows the notebooks down)."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _entry(out_dir: Path, status: str, seconds: float) -> dict:
    """One notebook's record: status, end-to-end seconds and what its summary.json says."""
    entry: dict = {"status": status, "end_to_end_s": round(seconds, 1)}
    summary_path = out_dir / "summary.json"
    if status == "ok" and summary_path.exists():
        summary = json.loads(summary_path.read_text())
        entry["wall_time_s"] = summary.get("wall_time_s")
        entry["preset_in_summary"] = summary.get("preset")
        entry["device"] = (summary.get("receipt") or {}).get("device")
    entry["load_average_1min_after"] = load_average()
    return entry


def main(argv: list[str] | None = None) -> int:
    """Run the notebooks, write the result file; exit status 1 when a notebook failed."""
    sys.path.insert(0, str(REPO))
    from fedlab.config import PRESET_ENV
    from fedlab.reproduce import find_notebooks, kernel_threads, run_notebook, run_parallel

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="smoke", choices=["smoke", "classroom", "paper"])
    parser.add_argument("--only", nargs="*", help="notebook prefixes, e.g. 01 02 (default: all)")
    parser.add_argument("--output-root", default="", help="where the notebooks write (default: a temporary folder)")
    parser.add_argument("--out", default="", help="result file (default: bench/results/notebooks_<preset>.json)")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks at once, as make reproduce --jobs")
    args = parser.parse_args(argv)

    notebooks = find_notebooks(REPO / "notebooks")
    if args.only:
        notebooks = [p for p in notebooks if any(p.stem.startswith(o) for o in args.only)]
        if not notebooks:
            parser.error(f"--only {args.only} matches no notebook in {REPO / 'notebooks'}")
    # The kernels import this checkout's fedlab, whatever else is installed.
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    # $FEDLAB_PRESET wins over the notebook's parameter (see fedlab.start_run): make it the preset measured.
    os.environ[PRESET_ENV] = args.preset
    output_root = Path(args.output_root or tempfile.mkdtemp(prefix="fedlab-bench-notebooks-"))
    out_file = Path(args.out or REPO / "bench" / "results" / f"notebooks_{args.preset}.json")

    record = {
        "what": ("wall time of each lesson notebook, executed with papermill "
                 + ("one after another" if args.jobs == 1 else f"{args.jobs} at a time (as make reproduce)")),
        "jobs": args.jobs,
        "preset": args.preset,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git": git_commit(),
        "machine": machine(),
        "load_average_1min_before": load_average(),
        "notebooks": {},
    }
    print(f"machine: {record['machine']['cpu_model']}, {record['machine']['cpu_cores_usable']} usable cores, "
          f"torch threads {record['machine']['torch_threads']}, GPU {record['machine']['gpu']}", flush=True)
    total = time.perf_counter()
    if args.jobs > 1:
        record["threads_per_kernel"] = kernel_threads(args.jobs)
        outcome = run_parallel(notebooks, output_root, args.preset, args.jobs)
        for nb in notebooks:
            ok, seconds = outcome[nb.stem]
            record["notebooks"][nb.stem] = _entry(output_root / nb.stem, "ok" if ok else "failed", seconds)
    else:
        for nb in notebooks:
            out_dir = output_root / nb.stem
            print(f"== {nb.stem} (preset={args.preset})", flush=True)
            tic = time.perf_counter()
            error = None
            try:
                run_notebook(nb, out_dir, args.preset)
            except Exception as err:  # record the failure and go on, as make reproduce does
                # papermill's error carries the failing cell's exception as ename/evalue
                error = f"{getattr(err, 'ename', type(err).__name__)}: {getattr(err, 'evalue', str(err))[:300]}"
            entry = _entry(out_dir, "failed" if error else "ok", time.perf_counter() - tic)
            if error:
                entry["error"] = error
            record["notebooks"][nb.stem] = entry
            print(f"   {entry['status']}: end to end {entry['end_to_end_s']} s, inside the notebook "
                  f"{entry.get('wall_time_s')} s", flush=True)
    record["total_end_to_end_s"] = round(time.perf_counter() - total, 1)
    record["environment"] = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TQDM_DISABLE")
                             if k in os.environ}
    record["command"] = " ".join([*(f"{k}={shlex.quote(v)}" for k, v in record["environment"].items()),
                                  "python", "bench/bench_notebooks.py", *map(shlex.quote, sys.argv[1:])])
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps(record, indent=1) + "\n")
    print(f"\ntotal {record['total_end_to_end_s']} s; wrote {out_file}")
    print(f"reproduce with: {record['command']}")
    failed = [name for name, e in record["notebooks"].items() if e["status"] != "ok"]
    if failed:
        print(f"failed notebooks: {failed} (their times are not lesson times)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
