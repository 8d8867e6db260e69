"""The ``fedlab`` command.

    fedlab info                                  versions and compute device
    fedlab data list [--root DIR]                manifests available; with --root, what DIR holds
    fedlab data verify NAME --root DIR           check a local copy against its manifest (a subset passes, warned)
    fedlab data prepare NAME --root DIR --size N preprocess and cache arrays for fast loading (never inside DIR)
    fedlab reproduce [--preset P ...]            run every notebook (``python -m fedlab.reproduce``)
    fedlab compare --dataset D --methods A,B ... the paper's table over seeds, without a notebook
        [--set FIELD=VALUE ...]                  with preset settings changed, e.g. --set rounds=90
    fedlab cache info|clear                      the run cache (finished training runs)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fedlab",
                                     description="Federated learning for medical image analysis.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print versions and the compute device")
    sub.add_parser("reproduce", help="execute every notebook (options: fedlab reproduce --help)")
    cmp = sub.add_parser("compare", help="run methods over seeds and print the paper's table",
                         description="Run methods on a dataset for several seeds; write results.csv, curves.csv "
                                     "and summary.json to --out and print the table (mean ± std over seeds) "
                                     "beside the LC-Fed paper's numbers.")
    cmp.add_argument("--dataset", default="prostate", help="prostate, polyp, fundus (synthetic without "
                     "--data-dir), or a real dataset (fedlab data list)")
    cmp.add_argument("--methods", default="Local,FedAvg,FT,FedBN,FedRep,PRR-FL,LC-Fed",
                     help="comma-separated strategy names (default: the paper's rows)")
    cmp.add_argument("--preset", default="classroom", help="smoke, classroom or paper")
    cmp.add_argument("--seeds", default="0", help="comma-separated seeds, e.g. 0,1,2")
    cmp.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                     help="change a preset setting, e.g. --set rounds=90 (repeatable; fields: fedlab.config.Config)")
    cmp.add_argument("--out", default="outputs/compare", help="output folder")
    cmp.add_argument("--data-dir", default="", help="real-data root (default: the embedded synthetic data)")
    cmp.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    cmp.add_argument("--cache-dir", default=None,
                     help="run cache folder (default: <output root>/cache, shared with the notebooks)")
    cmp.add_argument("--no-cache", action="store_true", help="neither reuse nor store finished runs")
    cache = sub.add_parser("cache", help="the run cache: info or clear")
    cache.add_argument("action", choices=["info", "clear"])
    cache.add_argument("--cache-dir", default=None,
                       help="default: <output root>/cache (outputs/ of the checkout, or $FEDLAB_OUTPUT_ROOT)")
    data = sub.add_parser("data", help="real datasets: list, verify, prepare")
    dsub = data.add_subparsers(dest="data_command", required=True)
    lister = dsub.add_parser("list", help="list the dataset manifests, or what a folder holds")
    lister.add_argument("--root", default=None, help="a data folder: say which datasets, layouts and sites it holds")
    for cmd, text in (("verify", "check a local copy of a dataset"), ("prepare", "preprocess and cache")):
        p = dsub.add_parser(cmd, help=text)
        p.add_argument("name", help="manifest name (see `fedlab data list`) or path to a manifest .yaml")
        p.add_argument("--root", required=True, help="folder holding the dataset (never written to)")
        p.add_argument("--variant", default=None, help="manifest variant, e.g. polyp's as_released")
        p.add_argument("--layout", default=None, help="manifest layout (default: the one the folder matches)")
        if cmd == "verify":
            p.add_argument("--no-decode", action="store_true", help="check names, counts, checksums only")
            p.add_argument("--strict", action="store_true",
                           help="fail (exit 1) on a subset too: fewer sites or files than the manifest lists")
        else:
            p.add_argument("--size", type=int, required=True, help="image side in pixels")
            p.add_argument("--out", default=None,
                           help="cache folder (default $FEDLAB_CACHE_DIR, else the user cache folder; never in ROOT)")
            p.add_argument("--force", action="store_true", help="rebuild even when the cache is valid")
    return parser


def _list(root: str | None) -> int:
    from fedlab.data.manifest import ManifestError, available_manifests, load_manifest, manifest_dirs

    if root is not None:
        return _list_folder(root)
    names = available_manifests()
    if not names:
        print(f"no manifests found in {[str(d) for d in manifest_dirs()]}", file=sys.stderr)
        return 1
    for name in names:
        try:
            m = load_manifest(name)
            layouts = ", ".join(m.layout_names)
            print(f"{name:<30} {m.task:<15} {len(m.sites)} sites  layouts: {layouts:<24} {m.data['title']}")
        except ManifestError as exc:
            print(f"{name:<30} INVALID: {exc}")
    return 0


def _list_folder(root: str) -> int:
    from fedlab.data.detect import find_matches

    matches = find_matches(root)
    if not matches:
        print(f"{root}: matches no manifest and not the generic layout ROOT/<SITE>/{{train,test}}/{{image,mask}}/*. "
              "Run `fedlab data list` for the datasets fedlab knows.", file=sys.stderr)
        return 1
    print(f"{root} holds:")
    for m in matches:
        print(f"  {m.dataset:<30} {m.kind:<16} layout {m.layout}: sites {', '.join(m.sites)} "
              f"({len(m.sites)} of {len(m.expected)}), {m.files} file(s)")
    best = matches[0]
    print(f"\nDATASET = \"\" (detect) would load {best.dataset!r}: {best.why}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fedlab.config import PRESETS, parse_overrides
    from fedlab.experiments.compare import compare
    from fedlab.federation.cache import RunCache
    from fedlab.notebook import default_output_root

    out = Path(args.out)
    cache = None if args.no_cache else RunCache(args.cache_dir or default_output_root() / "cache")
    try:
        base = PRESETS["segmentation"].get(args.preset)
        overrides = parse_overrides(args.overrides, base) if base is not None and args.overrides else {}
        summary = compare(args.dataset, args.methods.split(","), preset=args.preset, seeds=args.seeds.split(","),
                          out=out, data_dir=args.data_dir, device=args.device, cache=cache, overrides=overrides)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    changed = ", ".join(f"{k}={v}" for k, v in summary["overrides"].items())
    preset = f"{summary['preset']} ({changed})" if changed else summary["preset"]
    print(f"\n{summary['title']}, preset {preset}, seeds {summary['seeds']}: IoU (%) and ASSD (px), "
          "mean ± std over seeds; validation-selected models, test split")
    print(summary["table"])
    print(f"\nwrote {out}/results.csv, curves.csv, summary.json ({summary['wall_time_s']:.0f} s)")
    return 0


def _cache(args: argparse.Namespace) -> int:
    from fedlab.federation.cache import RunCache
    from fedlab.notebook import default_output_root

    cache = RunCache(args.cache_dir or default_output_root() / "cache")
    if args.action == "info":
        print(f"{cache.root}: {len(cache.keys())} finished run(s)" + ("" if cache.enabled else " (disabled)"))
    else:
        print(f"removed {cache.clear()} run(s) from {cache.root}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 = success, 1 = data problems, 2 = usage / manifest)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["reproduce"]:  # its options belong to fedlab.reproduce
        from fedlab.reproduce import main as reproduce

        return reproduce(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "info":
        import fedlab

        fedlab.print_config()
        return 0
    if args.command == "compare":
        return _compare(args)
    if args.command == "cache":
        return _cache(args)
    from fedlab.data.errors import DataError
    from fedlab.data.manifest import ManifestError
    from fedlab.data.prepare import prepare
    from fedlab.data.verify import verify

    try:
        if args.data_command == "list":
            return _list(args.root)
        if args.data_command == "verify":
            report = verify(args.name, args.root, variant=args.variant, decode=not args.no_decode, layout=args.layout)
            print(report)
            if not report.ok:
                print(f"\nverify FAILED: {len(report.problems)} problem(s); fix them (see above) and rerun.",
                      file=sys.stderr)
                return 1
            if report.is_subset:
                verdict = "FAILED (--strict)" if args.strict else "passed"
                print(f"\nWARNING: {args.root} holds a SUBSET of {report.name} ({len(report.sites_found)} site(s): "
                      f"{', '.join(report.sites_found)}); verify {verdict}. Results on a subset are not comparable "
                      "with those on the full dataset.", file=sys.stderr)
                return 1 if args.strict else 0
            return 0
        out = prepare(args.name, args.root, args.size, out_dir=args.out, variant=args.variant, force=args.force,
                      layout=args.layout)
        print(f"prepared {args.name} at {args.size}x{args.size}: {out}")
        return 0
    except (ManifestError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
