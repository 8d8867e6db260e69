"""Real tabular data: the user's ADNI ROI table and the UCI Heart Disease four-hospital data.

ADNI ROI CSV (ADNI may not be redistributed; bring your own table). Expected schema, one row per
subject (extra columns are ignored):

* ``subject_id``: the ADNI subject ID (e.g. "002_S_0295"), unique within a phase;
* ``phase``: "ADNI-1" (1.5T) or "ADNI-2" (3T) (aliases "ADNI1", "ADNI2", "ADNI-GO/2" accepted);
* ``diagnosis``: "AD" or "NC" ("CN" accepted as NC);
* the 90 AAL cerebral ROI grey-matter volumes, columns named as in :data:`AAL90_ROIS`
  (e.g. ``Precentral_L``, ..., ``Temporal_Inf_R``), numbers, no missing values.

Such a table is produced by segmenting each baseline T1 image (e.g. SPM/CAT12 or FSL), warping the
AAL atlas to subject space and summing the GM probability in each of the 90 cerebral labels.
Subjects scanned in both phases are removed from ADNI-2, as the survey did (the count is printed).

UCI Heart Disease (CC BY 4.0): four ``processed.<site>.data`` files, no header, 14 columns
(:data:`UCI_COLUMNS`), ``?`` = missing, target ``num`` in 0..4 binarised as ``num > 0``. Two
preprocessings (:func:`load_uci_heart`):

* ``"fedlab"`` (default): FLamby's missing-value policy, then the 10 remaining attributes as numbers;
  the lesson draws its own random stratified 80/20 splits (:func:`uci_federation`).
* ``"flamby"``: FLamby's Fed-Heart-Disease preprocessing exactly as its code does it
  (``flamby/datasets/fed_heart_disease/dataset.py``, owkin/FLamby commit edacf54), so that numbers can
  be set beside FLamby's published ones:

  1. each file is read with ``pandas.read_csv(header=None)``; ``?`` is replaced by NaN; columns 10,
     11 and 12 (``slope``, ``ca``, ``thal``: mostly missing outside Cleveland) are dropped, then every
     row with a missing value (``dropna``); the rest is converted to numbers. 740 of 920 rows remain.
  2. The target ``num`` is binarised (0 stays 0, anything else is 1).
  3. Each hospital is split once into train and test with
     ``train_test_split(arange(n), train_size=0.66, test_size=1 - 0.66, random_state=43, shuffle=True,
     stratify=labels)``, stratified only when both classes have more than 2 rows at that hospital
     (Switzerland, with one healthy patient left, is split unstratified). Train/test: Cleveland 199/104,
     Hungary 172/89, Switzerland 30/16, VA Long Beach 85/45. The same split serves every seed.
  4. ``cp`` (chest-pain type, codes 1-4) and ``restecg`` (resting ECG, codes 0-2) are one-hot coded
     over the four hospitals together with ``pandas.get_dummies(drop_first=True)``: 13 features,
     :data:`UCI_FLAMBY_FEATURES`.
  5. FLamby then normalises every row with the mean and the (unbiased, ``torch.std``) standard
     deviation of its own hospital's training rows, ``(x - mean) / (std + 1e-9)``, and the pooled
     ("Pooled Training") data with the pooled training statistics. In fedlab that step belongs to the
     training protocol (:mod:`fedlab.data.standardize`): the same per-hospital (Single, Cross, and the
     federated settings with ``standardize="local"``) and pooled (Mix) training statistics, with the
     population standard deviation (a factor ``sqrt((n - 1) / n)``, at most 1.7% at Switzerland's 30
     training rows, absorbed by the L2 penalty's scale) and a constant feature left unscaled instead of
     divided by 1e-9.

  FLamby's benchmark model is a logistic regression on these 13 inputs (BCE loss, batch 4, no
  weight decay; Adam 1e-3 for 50 epochs for local and pooled training; SGD 1e-3 with 100 local
  updates for 15 rounds for FedAvg and FedProx) and its metric is the test accuracy of each hospital.
  Its published numbers are packaged in ``fedlab/reference/flamby_heart_disease.csv``.

No imputation in either preprocessing: no statistic leaks from test data.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

from fedlab.data.federation import Federation, Site, Split
from fedlab.data.splits import stratified_split
from fedlab.data.synthetic.adni import AAL90_ROIS

ADNI_ID, ADNI_PHASE, ADNI_DIAGNOSIS = "subject_id", "phase", "diagnosis"
ADNI_PHASES: tuple[str, ...] = ("ADNI-1", "ADNI-2")
ADNI_COLUMNS: tuple[str, ...] = (ADNI_ID, ADNI_PHASE, ADNI_DIAGNOSIS, *AAL90_ROIS)
PHASE_ALIASES = {"ADNI1": "ADNI-1", "ADNI-1": "ADNI-1", "ADNI2": "ADNI-2", "ADNI-2": "ADNI-2",
                 "ADNIGO/2": "ADNI-2", "ADNI-GO/2": "ADNI-2"}
DIAGNOSIS_LABELS = {"AD": 1, "NC": 0, "CN": 0}

UCI_COLUMNS: tuple[str, ...] = ("age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalach", "exang",
                                "oldpeak", "slope", "ca", "thal", "num")
UCI_DROPPED: tuple[str, ...] = ("slope", "ca", "thal")
UCI_FEATURES: tuple[str, ...] = tuple(c for c in UCI_COLUMNS[:-1] if c not in UCI_DROPPED)
#: FLamby's 13 inputs: the 8 numeric attributes, then cp and restecg one-hot coded (first level dropped).
UCI_FLAMBY_FEATURES: tuple[str, ...] = ("age", "sex", "trestbps", "chol", "fbs", "thalach", "exang", "oldpeak",
                                        "cp_2", "cp_3", "cp_4", "restecg_1", "restecg_2")
UCI_PREPROCESSINGS: tuple[str, ...] = ("fedlab", "flamby")
FLAMBY_TRAIN_FRACTION, FLAMBY_SPLIT_SEED = 0.66, 43
UCI_SITES: dict[str, str] = {"Cleveland": "processed.cleveland.data", "Hungary": "processed.hungarian.data",
                             "Switzerland": "processed.switzerland.data", "VA Long Beach": "processed.va.data"}
UCI_MD5: dict[str, str] = {"processed.cleveland.data": "2d91a8ff69cfd9616aa47b59d6f843db",
                           "processed.hungarian.data": "22e96bee155b5973568101c93b3705f6",
                           "processed.switzerland.data": "9a87f7577310b3917730d06ba9349e20",
                           "processed.va.data": "4249d03ca7711e84f4444768c9426170"}
UCI_ROWS: dict[str, int] = {"Cleveland": 303, "Hungary": 294, "Switzerland": 123, "VA Long Beach": 200}
UCI_URL_BASE = "https://archive.ics.uci.edu/ml/machine-learning-databases/heart-disease/"


# --- ADNI ---------------------------------------------------------------------------------------
def validate_adni(df: pd.DataFrame, verbose: bool = True) -> pd.DataFrame:
    """Check an ADNI ROI table and return a clean copy (phases and diagnoses normalised).

    Args:
        df: The table (schema in the module docstring).
        verbose: Print how many subjects in both phases were removed from ADNI-2.

    Returns:
        Columns ``subject_id, phase, diagnosis`` + the 90 ROIs, phase in :data:`ADNI_PHASES`,
        diagnosis "AD" / "NC", ROI volumes as float.

    Raises:
        ValueError: naming the problem: missing columns, unknown phases, labels other than AD/NC,
            non-numeric or missing ROI values, duplicate subjects within a phase.
    """
    missing = [c for c in ADNI_COLUMNS if c not in df.columns]
    if missing:
        shown = ", ".join(missing[:8]) + (f" ... ({len(missing)} in all)" if len(missing) > 8 else "")
        raise ValueError(f"ADNI table is missing required column(s): {shown}. Expected {ADNI_ID}, {ADNI_PHASE}, "
                         f"{ADNI_DIAGNOSIS} and the 90 AAL ROI columns named as fedlab.data.tabular.AAL90_ROIS.")
    out = df.loc[:, list(ADNI_COLUMNS)].copy()
    for col in (ADNI_ID, ADNI_PHASE, ADNI_DIAGNOSIS):
        if out[col].isna().any():
            raise ValueError(f"ADNI table has missing values (NaN) in column {col!r} "
                             f"(rows {out.index[out[col].isna()].tolist()[:5]}); fill or drop those rows.")
    out[ADNI_ID] = out[ADNI_ID].astype(str).str.strip()
    phase = out[ADNI_PHASE].astype(str).str.strip().str.upper().str.replace(" ", "")
    mapped = phase.map({k.upper(): v for k, v in PHASE_ALIASES.items()})
    if mapped.isna().any():
        raise ValueError(f"ADNI table has unknown phase value(s) {sorted(set(out[ADNI_PHASE][mapped.isna()]))}; "
                         f"expected one of {list(ADNI_PHASES)}.")
    out[ADNI_PHASE] = mapped
    diag = out[ADNI_DIAGNOSIS].astype(str).str.strip().str.upper()
    bad = sorted(set(diag[~diag.isin(list(DIAGNOSIS_LABELS))]))
    if bad:
        raise ValueError(f"ADNI table has diagnosis label(s) other than AD/NC: {bad}. Keep only AD and NC subjects "
                         "(drop MCI and others) before loading.")
    out[ADNI_DIAGNOSIS] = diag.replace({"CN": "NC"})
    rois = list(AAL90_ROIS)
    numeric = out[rois].apply(pd.to_numeric, errors="coerce")
    nonnum = [c for c in rois if (numeric[c].isna() & out[c].notna()).any()]
    if nonnum:
        raise ValueError(f"ADNI table has non-numeric values in ROI column(s) {nonnum[:5]}; "
                         "ROI volumes must be numbers.")
    if numeric.isna().any().any():
        cols = numeric.columns[numeric.isna().any()].tolist()
        raise ValueError(f"ADNI table has missing values (NaN) in {int(numeric.isna().sum().sum())} ROI cell(s), "
                         f"column(s) {cols[:5]}; impute or drop those subjects before loading.")
    out[rois] = numeric.astype(float)
    dup = out.duplicated([ADNI_ID, ADNI_PHASE], keep=False)
    if dup.any():
        raise ValueError(f"ADNI table has duplicate subject(s) within a phase: "
                         f"{sorted(set(out.loc[dup, ADNI_ID]))[:5]}; keep one (baseline) row per subject and phase.")
    in_first = set(out.loc[out[ADNI_PHASE] == ADNI_PHASES[0], ADNI_ID])
    both = (out[ADNI_PHASE] == ADNI_PHASES[1]) & out[ADNI_ID].isin(in_first)
    if verbose:
        print(f"ADNI: {int(both.sum())} subject(s) in both ADNI-1 and ADNI-2 removed from ADNI-2.")
    return out.loc[~both].reset_index(drop=True)


def load_adni_csv(path: str | Path, verbose: bool = True) -> pd.DataFrame:
    """Read and validate the user's ADNI ROI CSV (a file, or a folder holding exactly one ``*.csv``).

    Raises:
        FileNotFoundError: when the file (or a CSV in the folder) does not exist.
        ValueError: see :func:`validate_adni`.
    """
    path = Path(path)
    if path.is_dir():
        csvs = sorted(path.glob("*.csv"))
        if len(csvs) != 1:
            raise FileNotFoundError(f"expected exactly one .csv in {path} (the ADNI ROI table), found {len(csvs)}")
        path = csvs[0]
    if not path.exists():
        raise FileNotFoundError(f"ADNI CSV {path} does not exist; see data_manifests/ for how to produce it.")
    return validate_adni(pd.read_csv(path), verbose=verbose)


# --- generic: table -> Federation ---------------------------------------------------------------
def federation_from_frame(df: pd.DataFrame, site_column: str, label: pd.Series | np.ndarray,
                          features: Sequence[str], name: str, sites: Sequence[str] | None = None, seed: int = 0,
                          test_fraction: float | None = 0.2, synthetic: bool = False,
                          source: str = "", labels: tuple[str, ...] = ("positive",)) -> Federation:
    """A classification Federation with one site per value of ``site_column`` and a stratified split.

    Args:
        df: One row per sample.
        site_column: Column naming each row's site.
        label: 0/1 label per row (aligned with ``df``).
        features: Feature columns (x is ``(N, F)`` float32, in this order).
        name: Dataset name.
        sites: Site order (default: order of first appearance).
        seed: Split seed (see :func:`fedlab.data.splits.stratified_split`); the split is stratified by
            label unless a site has fewer than 2 samples of a class (UCI Switzerland after dropping
            missing rows has a single healthy patient), then it is a plain random split.
        test_fraction: Test fraction per site; ``None`` = no split (train = test = all rows of the site).
        synthetic: Whether the data are synthetic (shown in titles).
        source: Provenance string.
        labels: Name of the positive class.
    """
    y_all = np.asarray(label, dtype=np.float32)
    x_all = df[list(features)].to_numpy(np.float32)  # (N, F), converted once (column-wise frames copy slowly)
    site_of = df[site_column].to_numpy()
    sites = list(sites) if sites is not None else list(dict.fromkeys(site_of))
    out = []
    for site in sites:
        mask = site_of == site
        if not mask.any():
            raise ValueError(f"no rows for site {site!r} in column {site_column!r}")
        x = torch.from_numpy(x_all[mask])  # (n_k, F)
        y = torch.from_numpy(y_all[mask])  # (n_k,)
        stratify = bool(np.unique(y.numpy(), return_counts=True)[1].min() >= 2)
        if test_fraction is None:
            train = test = Split(x, y)
        else:
            tr, te = stratified_split(y.numpy(), test_fraction, seed, stratify=stratify)
            train, test = Split(x[tr], y[tr]), Split(x[te], y[te])
        out.append(Site(str(site), train, test, metadata={"num_samples": int(mask.sum()), "stratified": stratify}))
    return Federation(name, tuple(out), task="classification", labels=labels, synthetic=synthetic, source=source)


def adni_federation(df: pd.DataFrame, seed: int = 0, test_fraction: float | None = 0.2, synthetic: bool = False,
                    source: str = "") -> Federation:
    """Two-client ADNI federation (ADNI-1, ADNI-2) from a validated table; AD = 1, NC = 0."""
    y = df[ADNI_DIAGNOSIS].map(DIAGNOSIS_LABELS).to_numpy()
    fed = federation_from_frame(df, ADNI_PHASE, y, AAL90_ROIS, "ADNI AD vs NC", ADNI_PHASES, seed, test_fraction,
                                synthetic, source, labels=("AD",))
    strength = {"ADNI-1": 1.5, "ADNI-2": 3.0}
    sites = [Site(s.name, s.train, s.test, s.val, {**s.metadata, "field_strength_T": strength[s.name]}) for s in fed]
    return Federation(fed.name, tuple(sites), "classification", fed.labels, fed.synthetic, fed.source)


# --- UCI Heart Disease --------------------------------------------------------------------------
def file_md5(path: str | Path) -> str:
    """MD5 hex digest of a file."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_uci_heart(data_dir: str | Path) -> None:
    """Check that the four site files exist and have the MD5 sums of the UCI originals.

    Raises:
        FileNotFoundError: naming the missing file and how to get it.
        ValueError: naming a file whose checksum differs (corrupt or modified copy).
    """
    data_dir = Path(data_dir)
    for fname, md5 in UCI_MD5.items():
        path = data_dir / fname
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing; run fedlab.data.tabular.download_uci_heart({str(data_dir)!r})")
        got = file_md5(path)
        if got != md5:
            raise ValueError(f"{path} has MD5 {got}, expected {md5}: the file is corrupt or modified; "
                             "delete it and download it again.")


def download_uci_heart(dest: str | Path, base_url: str = UCI_URL_BASE, overwrite: bool = False,
                       timeout: float = 60.0) -> Path:
    """Fetch the four ``processed.*.data`` files from the UCI archive and verify their MD5 sums.

    Files already present with the right checksum are kept. Each download is written to a temporary
    file and moved into place only after its checksum matched.

    Returns:
        ``dest`` (the folder to pass to :func:`load_uci_heart`).
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for fname, md5 in UCI_MD5.items():
        target = dest / fname
        if target.exists() and not overwrite and file_md5(target) == md5:
            continue
        with urllib.request.urlopen(base_url + fname, timeout=timeout) as resp:  # noqa: S310 (fixed https URL)
            data = resp.read()
        got = hashlib.md5(data).hexdigest()
        if got != md5:
            raise ValueError(f"downloaded {fname} has MD5 {got}, expected {md5}; the server copy differs.")
        fd, tmp = tempfile.mkstemp(dir=dest, suffix=".part")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    return dest


def read_uci_site(path: str | Path) -> pd.DataFrame:
    """One raw site file: 14 columns, ``?`` -> NaN, no other processing."""
    df = pd.read_csv(path, header=None, na_values="?")
    if df.shape[1] != len(UCI_COLUMNS):
        raise ValueError(f"{path} has {df.shape[1]} columns, expected {len(UCI_COLUMNS)} ({', '.join(UCI_COLUMNS)}); "
                         "the files have no header row.")
    df.columns = list(UCI_COLUMNS)
    return df


def load_uci_heart(data_dir: str | Path, verify: bool = True, preprocessing: str = "fedlab") -> pd.DataFrame:
    """The four hospitals as one table (preprocessings in the module docstring).

    Args:
        data_dir: Folder holding the four ``processed.*.data`` files.
        verify: Check the MD5 sums first.
        preprocessing: "fedlab" (FLamby's missing-value policy, 10 numeric features) or "flamby" (FLamby's
            preprocessing: 13 features with cp and restecg one-hot coded, and FLamby's fixed train/test split).

    Returns:
        Columns ``site``, the features (:data:`UCI_FEATURES` or :data:`UCI_FLAMBY_FEATURES`), ``num`` and
        ``target`` (``num > 0`` as 0/1); with "flamby" also ``flamby_split`` ("train" or "test").

    Raises:
        ValueError: for an unknown preprocessing (and see :func:`verify_uci_heart`).
    """
    if preprocessing not in UCI_PREPROCESSINGS:
        raise ValueError(f"Unknown UCI preprocessing {preprocessing!r}; choose one of {list(UCI_PREPROCESSINGS)}.")
    data_dir = Path(data_dir)
    if verify:
        verify_uci_heart(data_dir)
    frames = []
    for site, fname in UCI_SITES.items():
        df = read_uci_site(data_dir / fname).drop(columns=list(UCI_DROPPED)).dropna().reset_index(drop=True)
        df.insert(0, "site", site)
        if preprocessing == "flamby":
            df["flamby_split"] = _flamby_split((df["num"] > 0).to_numpy())
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    out["target"] = (out["num"] > 0).astype(int)
    if preprocessing == "flamby":
        dummies = pd.get_dummies(out[["cp", "restecg"]].astype(int).astype(str), drop_first=True, dtype=float)
        missing = [c for c in UCI_FLAMBY_FEATURES[8:] if c not in dummies.columns]
        if missing:
            raise ValueError(f"UCI files lack the code(s) {missing} of cp/restecg that FLamby's one-hot coding has; "
                             "are these the original processed.*.data files?")
        out = pd.concat([out.drop(columns=["cp", "restecg"]), dummies[list(UCI_FLAMBY_FEATURES[8:])]], axis=1)
    return out


def _flamby_split(disease: np.ndarray) -> np.ndarray:
    """FLamby's per-hospital split: "train" / "test" per row, exactly as its ``HeartDiseaseRaw`` draws it."""
    n = len(disease)
    levels, counts = np.unique(disease, return_counts=True)
    stratify = disease if len(levels) > 1 and (counts > 2).all() else None
    _, test = train_test_split(np.arange(n), test_size=1.0 - FLAMBY_TRAIN_FRACTION, train_size=FLAMBY_TRAIN_FRACTION,
                               random_state=FLAMBY_SPLIT_SEED, shuffle=True, stratify=stratify)
    split = np.full(n, "train", dtype=object)
    split[test] = "test"
    return split


def uci_federation(df: pd.DataFrame, seed: int = 0, test_fraction: float | None = 0.2) -> Federation:
    """Four-client UCI Heart Disease federation (real data); disease (num > 0) = 1.

    A table loaded with ``preprocessing="flamby"`` keeps FLamby's fixed split whatever ``seed`` and
    ``test_fraction`` say (``test_fraction=None`` still gives all rows as train and test, for Cross);
    otherwise each site is split at random, stratified, with ``seed``.
    """
    flamby = "flamby_split" in df.columns
    features = UCI_FLAMBY_FEATURES if flamby else UCI_FEATURES
    source = ("UCI Heart Disease (CC BY 4.0), " + ("FLamby's preprocessing and split" if flamby
                                                   else "FLamby missing-value policy"))
    fed = federation_from_frame(df, "site", df["target"].to_numpy(), features, "UCI heart disease", list(UCI_SITES),
                                seed, test_fraction, synthetic=False, source=source, labels=("disease",))
    if not flamby or test_fraction is None:
        return fed
    sites = []
    for site in fed:
        rows = df[df["site"] == site.name]
        x = torch.tensor(rows[list(features)].to_numpy(np.float32))  # (n_k, 13)
        y = torch.tensor(rows["target"].to_numpy(np.float32))  # (n_k,)
        tr = torch.tensor((rows["flamby_split"] == "train").to_numpy())
        sites.append(Site(site.name, Split(x[tr], y[tr]), Split(x[~tr], y[~tr]),
                          metadata={**site.metadata, "split": "flamby (66/34, random_state=43)"}))
    return Federation(fed.name, tuple(sites), "classification", fed.labels, fed.synthetic, fed.source)
