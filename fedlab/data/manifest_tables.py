"""Verification of tabular datasets described by a manifest (UCI Heart Disease files, an ADNI ROI CSV).

Used by :func:`fedlab.data.verify.verify`; loading the tables is :mod:`fedlab.data.tabular`'s job.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fedlab.data.checksums import hash_matches
from fedlab.data.manifest import Manifest
from fedlab.data.report import Report, SiteRow


def verify_tables(manifest: Manifest, root: Path, report: Report) -> None:
    """Append per-site rows and problems for a ``table`` or ``table_files`` layout to ``report``."""
    if manifest.layout["kind"] == "table_files":
        _verify_files(manifest, root, report)
    else:
        _verify_single_table(manifest, root, report)


def _verify_files(manifest: Manifest, root: Path, report: Report) -> None:
    """One delimited file per site: presence, checksum, row count, fields per row."""
    lay = manifest.layout
    any_present = any((root / site["file"]).is_file() for site in manifest.sites)
    for site in manifest.sites:
        path = root / site["file"]
        expected = site.get("rows")
        problems = []
        if not path.is_file():
            if any_present:  # the other sites are here: a subset
                report.subset.append(f"site {site['name']} is absent ({path} not found)")
                report.rows.append(SiteRow(site["name"], "all", expected, None, 0, 0))
                continue
            problems.append(f"site {site['name']}: file {path} is missing; download it "
                            f"({manifest.data['source']['url']}) into {root}.")
            report.rows.append(SiteRow(site["name"], "all", expected, 0, 0, len(problems)))
            report.problems += problems
            continue
        for algorithm in ("md5", "sha256"):
            if site.get(algorithm) and not hash_matches(path, f"{algorithm}:{site[algorithm]}"):
                problems.append(f"site {site['name']}: checksum mismatch for {path} (expected {algorithm} "
                                f"{site[algorithm]}); the file is corrupt or modified (e.g. a header line added): "
                                "download it again.")
        try:
            lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        except UnicodeDecodeError as exc:
            lines = []
            problems.append(f"site {site['name']}: {path} is not a text file ({exc}); download it again.")
        if expected is not None and len(lines) != int(expected):
            problems.append(f"site {site['name']}: expected {expected} rows in {path}, found {len(lines)}.")
        width = lay.get("columns")
        delimiter = lay.get("delimiter", ",")
        bad = [i + 1 for i, ln in enumerate(lines) if width and len(ln.split(delimiter)) != width]
        if bad:
            problems.append(f"site {site['name']}: lines {bad[:5]} of {path} do not have {width} fields; "
                            "the file is truncated or not the expected table.")
        report.rows.append(SiteRow(site["name"], "all", expected, len(lines), len(lines), len(problems)))
        report.sites_found.append(site["name"])
        report.problems += problems


def _verify_single_table(manifest: Manifest, root: Path, report: Report) -> None:
    """One CSV for all sites (ADNI): required columns, labels, numeric ROI columns, duplicates."""
    lay = manifest.layout
    path = root if root.is_file() else root / lay.get("file", "")
    if not path.is_file():
        report.problems.append(f"table {path} is missing; pass the CSV file (or its folder) as --root. "
                               f"Expected columns: {lay['site_column']}, {lay['label_column']}, ... "
                               "(see the manifest's schema).")
        return
    try:
        df = pd.read_csv(path)
    except Exception as exc:  # pandas raises several types for malformed files
        report.problems.append(f"cannot read {path} as CSV: {exc}")
        return
    id_col, site_col, label_col = lay["id_column"], lay["site_column"], lay["label_column"]
    features = list(lay.get("feature_columns") or [])
    missing = [c for c in [id_col, site_col, label_col, *features] if c not in df.columns]
    if missing:
        more = " ..." if len(missing) > 10 else ""
        report.problems.append(f"{path}: missing column(s) {missing[:10]}{more}; "
                               "rename your columns to the manifest's schema.")
        return
    labels = set(lay.get("label_values") or [])
    bad = sorted(set(df[label_col].astype(str)) - labels) if labels else []
    if bad:
        report.problems.append(f"{path}: column {label_col!r} has values {bad[:5]}, "
                               f"expected only {sorted(labels)}.")
    nan_cols = [c for c in features if df[c].isna().any() or not pd.api.types.is_numeric_dtype(df[c])]
    if nan_cols:
        report.problems.append(f"{path}: feature column(s) {nan_cols[:5]} have missing or non-numeric "
                               "values.")
    dup = df[id_col][df.duplicated([id_col, site_col])].tolist()
    if dup:
        report.problems.append(f"{path}: subject(s) {dup[:5]} appear twice in the same {site_col}.")
    for site in manifest.sites:
        n = int((df[site_col].astype(str) == str(site["name"])).sum())
        expected = (site.get("counts") or {}).get("all")
        probs = 0
        if n == 0:
            report.problems.append(f"{path}: no rows with {site_col} == {site['name']!r}.")
            probs = 1
        else:
            report.sites_found.append(site["name"])
        report.rows.append(SiteRow(site["name"], "all", expected, n, n, probs))
