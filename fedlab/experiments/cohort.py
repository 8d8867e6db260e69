"""Notebook 04's synthetic ADNI-like cohort as a two-site federation for the privacy lessons (06, 07).

Built from the public cohort generator only (:func:`fedlab.data.synthetic.make_adni_cohort`): one site per phase
(ADNI-1 at 1.5T, ADNI-2 at 3T), a stratified train/test split per site, and each site's features standardised with
its *own* training statistics, so that no statistic leaves a site (federated statistics would be one more release
for the privacy lessons to account for). The data are synthetic, not ADNI.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from fedlab.data.federation import Federation, Site, Split
from fedlab.data.standardize import standardize
from fedlab.data.synthetic import make_adni_cohort


def cohort_federation(seed: int = 0, test_fraction: float = 0.2) -> Federation:
    """Notebook 04's synthetic ADNI-like cohort as two sites (ADNI-1, ADNI-2), each standardised with its own
    training statistics (which never leave the site). Stratified split per site with ``seed``."""
    table = make_adni_cohort(seed)
    features = [c for c in table.columns if c not in ("subject_id", "phase", "diagnosis")]
    sites = []
    for phase, rows in table.groupby("phase", sort=True):
        x = rows[features].to_numpy(np.float32)  # (n_k, 90)
        y = (rows["diagnosis"] == "AD").to_numpy(np.float32)
        tr, te = train_test_split(np.arange(len(rows)), test_size=test_fraction, random_state=seed, stratify=y)
        sites.append(Site(str(phase), Split(torch.tensor(x[tr]), torch.tensor(y[tr])),
                          Split(torch.tensor(x[te]), torch.tensor(y[te])), metadata={"features": list(features)}))
    raw = Federation("adni_synthetic", tuple(sites), task="classification", labels=("AD",), synthetic=True,
                     source=f"fedlab.data.synthetic.adni seed={seed} (synthetic, not ADNI)")
    fed, _ = standardize(raw, "local")
    return fed
