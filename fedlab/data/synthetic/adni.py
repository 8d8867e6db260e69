"""Synthetic ADNI-like cohort: 90 AAL grey-matter ROI volumes, AD vs NC, two scanners.

**This is not ADNI.** It is a synthetic stand-in with ADNI's schema whose few free parameters were
calibrated on the survey's Table 2 (Guan and Liu, section 6), on the rows that involve no
collaboration (Single and Cross); everything else the lesson shows on it is a prediction. ADNI data
may not be redistributed; bring your own CSV (see :mod:`fedlab.data.tabular`) to run the real comparison.

Two clients, with the paper's sizes and class balance:

* ``ADNI-1``: 1.5T, 428 subjects (199 AD, 229 NC);
* ``ADNI-2``: 3T, 360 subjects (159 AD, 201 NC).

Generative model of the grey-matter volume ``v[s, r]`` (cm^3) of subject ``s`` in ROI ``r``::

    log v = log mu_r + beta_tiv * log(TIV_s / 1450) - age_r * (age_s - 73) / 10
            - AD_s * severity_s * effect * atrophy_r + loadings_r . z_s + e_{s, r}
    v_measured = v * gain_{site, r} + offset_{site, r}

* ``mu_r``: a typical ROI volume; ``TIV``: total intracranial volume (head size, sex dependent);
* ``age_r``: normal ageing (strongest in frontal and medial temporal regions);
* ``atrophy_r``: the AD pattern of the literature (hippocampus, amygdala, parahippocampal gyrus,
  then temporal pole / inferior and middle temporal, fusiform, posterior cingulate, precuneus,
  angular gyrus, insula), so the per-ROI effect size is ``effect * atrophy_r``;
* ``severity_s``: the disease stage of an AD subject, Gamma distributed with shape
  ``severity_shape`` and the site's mean ``severity``. A small shape gives a long tail and many AD
  subjects with little AD-typical atrophy (early or atypical AD, or a clinical diagnosis that
  pathology would not confirm), so the classes overlap the way clinical labels do;
* ``loadings_r . z_s``: a few shared latent factors (low-rank covariance: global GM, lobar
  factors); ``e``: ROI noise, correlated between left/right homologues.

Scanner effect (``gain``, ``offset``): segmentation of grey matter depends on field strength,
contrast and coil. Each site multiplies ROI volumes by a per-ROI gain and adds a per-ROI offset
(random, ``scanner_noise``); 3T additionally segments ``scanner_gain`` more GM in the medial temporal
lobe and ``deep_gm_gain`` less in the basal ganglia and thalamus (iron-rich nuclei look different at
3T). ADNI-2 recruited milder AD than ADNI-1 (its ``severity`` is below 1).

Calibration (``bench/calibrate_adni.py`` reruns it; result in ``bench/results/adni_calibration.json``):

* *Fixed beforehand* (what a simulator may know): the sizes and class balance above; the AAL anatomy,
  atrophy, ageing and scanner-sensitivity patterns (tables below); head size, age, the latent factors
  and ROI noise (:class:`CohortSpec` defaults other than the fitted ones); the per-ROI scanner
  variation (``scanner_noise`` 0.01 at 1.5T, 0.02 at 3T) and the 3T deep-GM shift (-5%).
* *Fitted*, by Nelder-Mead on the mean over 10 synthetic cohorts (seeds 0-9, five stratified 80/20
  splits each, the lesson's protocol with the classroom preset's L2 penalty, Single and Cross solved
  exactly): ``effect``, ``severity_shape``, ADNI-2's ``severity`` and ADNI-2's ``scanner_gain``, to the
  eight numbers of Table 2 without collaboration: ACC and AUC of Single and Cross on both clients
  (loss: sum of squared differences). From the start (0.25, 2.0, 0.9, 0.0) Nelder-Mead reached, in
  119 evaluations, ``effect`` 0.324, ``severity_shape`` 0.846, ADNI-2 ``severity`` 0.827 and
  ``scanner_gain`` -0.017 (3T segments slightly *less* medial temporal GM: no strong threshold shift).
  The mean over the ten cohorts lands within 0.015 of all eight numbers; one cohort scatters around
  that mean by about 0.02 (standard deviation of Single's ACC over cohorts), and the notebook's cohort
  (seed 0) has Single on ADNI-1 0.042 below the paper.
* *Predicted*, not fitted: Mix, FedAvg, FedSGD and FedProx, and SEN and SPE everywhere. Mean over the
  ten cohorts minus the paper, ACC on ADNI-1 / ADNI-2: Mix -0.031 / -0.039, FedAvg -0.017 / -0.007,
  FedSGD +0.002 / -0.023, FedProx -0.019 / -0.020 (classroom preset). Mix beats Single by about 0.01 on
  both clients on average (in 7 of 10 cohorts each), less than the paper's 0.026 and 0.044. Pooling
  gains about as much when the two clients are drawn alike (no scanner or stage difference: +0.009 on
  ADNI-1, +0.016 on ADNI-2, ten cohorts): what limits the gain is how little the synthetic model
  improves from ~300 to ~630 training subjects, not the difference between the clients.

Structural parameters (ROI volumes, atrophy pattern, loadings, scanner effects) are fixed by
``structure_seed``; subjects are drawn from ``seed``. Everything is deterministic. Disease stages are
drawn by inverse CDF from one uniform number per subject, so a subject keeps its quantile when the
calibrated parameters change (common random numbers make the calibration loss smooth).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import gamma

# The 45 cerebral AAL regions in atlas order; each has a left (_L) and a right (_R) ROI.
AAL_REGIONS: tuple[str, ...] = (
    "Precentral", "Frontal_Sup", "Frontal_Sup_Orb", "Frontal_Mid", "Frontal_Mid_Orb", "Frontal_Inf_Oper",
    "Frontal_Inf_Tri", "Frontal_Inf_Orb", "Rolandic_Oper", "Supp_Motor_Area", "Olfactory", "Frontal_Sup_Medial",
    "Frontal_Med_Orb", "Rectus", "Insula", "Cingulum_Ant", "Cingulum_Mid", "Cingulum_Post", "Hippocampus",
    "ParaHippocampal", "Amygdala", "Calcarine", "Cuneus", "Lingual", "Occipital_Sup", "Occipital_Mid",
    "Occipital_Inf", "Fusiform", "Postcentral", "Parietal_Sup", "Parietal_Inf", "SupraMarginal", "Angular",
    "Precuneus", "Paracentral_Lobule", "Caudate", "Putamen", "Pallidum", "Thalamus", "Heschl", "Temporal_Sup",
    "Temporal_Pole_Sup", "Temporal_Mid", "Temporal_Pole_Mid", "Temporal_Inf",
)
#: The 90 cerebral ROIs of the AAL atlas (labels 1-90, cerebellum excluded), in atlas order.
AAL90_ROIS: tuple[str, ...] = tuple(f"{region}_{side}" for region in AAL_REGIONS for side in ("L", "R"))

#: Relative AD atrophy per region (1 = hippocampus); unlisted regions get a small baseline.
AD_ATROPHY: dict[str, float] = {
    "Hippocampus": 1.0, "Amygdala": 0.9, "ParaHippocampal": 0.8, "Temporal_Pole_Mid": 0.55,
    "Temporal_Inf": 0.55, "Temporal_Mid": 0.5, "Temporal_Pole_Sup": 0.45, "Fusiform": 0.45,
    "Cingulum_Post": 0.4, "Precuneus": 0.35, "Angular": 0.35, "Insula": 0.3, "Temporal_Sup": 0.3,
    "Parietal_Inf": 0.25, "SupraMarginal": 0.2, "Olfactory": 0.2, "Frontal_Med_Orb": 0.15, "Thalamus": 0.15,
}
#: Regions with the strongest normal ageing (relative weight); others get 0.5.
AGEING: dict[str, float] = {
    "Hippocampus": 1.0, "Amygdala": 0.9, "Frontal_Sup": 1.0, "Frontal_Mid": 1.0, "Frontal_Inf_Tri": 0.9,
    "Frontal_Inf_Oper": 0.9, "Insula": 0.9, "Cingulum_Ant": 0.9, "Thalamus": 0.8, "Caudate": 0.8, "Putamen": 0.8,
}
#: Regions where 3T segments more GM than 1.5T (relative weight of the scanner gain).
SCANNER_SENSITIVE: dict[str, float] = {
    "Hippocampus": 1.0, "Amygdala": 1.0, "ParaHippocampal": 0.9, "Temporal_Pole_Mid": 0.8, "Temporal_Pole_Sup": 0.8,
    "Temporal_Inf": 0.7, "Temporal_Mid": 0.6, "Fusiform": 0.6, "Insula": 0.5, "Cingulum_Post": 0.4,
}

#: Deep grey matter, whose segmentation depends strongly on field strength (T1 contrast of iron-rich nuclei).
DEEP_GM: dict[str, float] = {"Pallidum": 1.0, "Putamen": 0.8, "Thalamus": 0.7, "Caudate": 0.6}


@dataclass(frozen=True)
class CohortSite:
    """One synthetic acquisition phase (a client)."""

    name: str
    field_strength: float
    num_ad: int
    num_nc: int
    scanner_gain: float  # extra GM fraction in scanner-sensitive regions
    scanner_noise: float  # spread of per-ROI gains / offsets around that pattern
    deep_gm_gain: float = 0.0  # GM fraction change in the basal ganglia and thalamus
    severity: float = 1.0  # mean disease stage of the AD subjects (ADNI-2 recruited earlier-stage AD)


ADNI_SITES: tuple[CohortSite, ...] = (
    CohortSite("ADNI-1", 1.5, num_ad=199, num_nc=229, scanner_gain=0.0, scanner_noise=0.01),
    CohortSite("ADNI-2", 3.0, num_ad=159, num_nc=201, scanner_gain=-0.016569, scanner_noise=0.02,
               deep_gm_gain=-0.05, severity=0.827208),  # scanner_gain, severity: calibrated
)


@dataclass(frozen=True)
class CohortSpec:
    """Knobs of the synthetic cohort (four calibrated on Table 2, the rest fixed; see the module docstring).

    Attributes:
        sites: The phases/clients (ADNI-2's ``severity`` and ``scanner_gain`` are calibrated).
        effect: Log-volume loss at the hippocampus of an AD subject at stage 1 (calibrated).
        severity_shape: Shape of the Gamma distribution of AD stages (calibrated; 1 = exponential).
        roi_noise: Standard deviation of independent ROI noise (log units).
        homologue_corr: Correlation of the ROI noise between left and right homologues.
        num_factors: Rank of the shared latent factors.
        factor_scale: Standard deviation of each factor's loading (log units).
        beta_tiv: Allometric exponent of ROI volume on TIV.
        age_effect: Log-volume loss per decade of age at the most age-sensitive ROIs.
        structure_seed: Seeds the structural parameters (not the subjects).
    """

    sites: tuple[CohortSite, ...] = ADNI_SITES
    effect: float = 0.324177  # calibrated
    severity_shape: float = 0.846205  # calibrated
    roi_noise: float = 0.08
    homologue_corr: float = 0.6
    num_factors: int = 6
    factor_scale: float = 0.05
    beta_tiv: float = 0.8
    age_effect: float = 0.04
    structure_seed: int = 2024

    def __post_init__(self) -> None:
        if self.severity_shape <= 0:
            raise ValueError(f"CohortSpec.severity_shape must be > 0, got {self.severity_shape!r}")
        if self.roi_noise <= 0 or not 0.0 <= self.homologue_corr <= 1.0:
            raise ValueError(f"CohortSpec needs roi_noise > 0 and homologue_corr in [0, 1], got {self.roi_noise!r} "
                             f"and {self.homologue_corr!r}")
        for site in self.sites:
            if site.num_ad < 1 or site.num_nc < 1 or site.severity < 0 or site.scanner_noise < 0:
                raise ValueError(f"CohortSite {site.name!r} needs num_ad, num_nc >= 1 and severity, scanner_noise >= 0")


def _weights(table: dict[str, float], default: float) -> np.ndarray:
    """Per-ROI weights (90,) from a per-region table."""
    return np.array([table.get(roi[:-2], default) for roi in AAL90_ROIS])


def _structure(spec: CohortSpec) -> dict[str, np.ndarray]:
    """The fixed anatomy: ROI volumes, ageing, atrophy, loadings and each site's scanner effect."""
    rng = np.random.default_rng(spec.structure_seed)
    r = len(AAL90_ROIS)
    region_mu = rng.uniform(np.log(2.0), np.log(18.0), size=len(AAL_REGIONS))
    log_mu = np.repeat(region_mu, 2) + rng.normal(0, 0.05, r)  # left/right similar sizes
    loadings = rng.normal(0, spec.factor_scale, (r, spec.num_factors))
    loadings[:, 0] = np.abs(loadings[:, 0]) + spec.factor_scale  # a global GM factor
    gains, offsets = [], []
    sens, deep = _weights(SCANNER_SENSITIVE, 0.1), _weights(DEEP_GM, 0.0)
    for site in spec.sites:
        gains.append(1.0 + site.scanner_gain * sens + site.deep_gm_gain * deep
                     + rng.normal(0, site.scanner_noise, r))
        offsets.append(rng.normal(0, site.scanner_noise, r) * np.exp(log_mu))
    return {"log_mu": log_mu, "ageing": _weights(AGEING, 0.5), "atrophy": _weights(AD_ATROPHY, 0.05),
            "loadings": loadings, "gains": np.array(gains), "offsets": np.array(offsets)}


def _subjects(site: CohortSite, k: int, spec: CohortSpec, anat: dict[str, np.ndarray],
              rng: np.random.Generator) -> np.ndarray:
    """Volumes (n, 90) of one site's subjects, AD first then NC."""
    n = site.num_ad + site.num_nc
    ad = np.r_[np.ones(site.num_ad), np.zeros(site.num_nc)]
    age = rng.normal(73.0, 6.5, n) + 1.5 * ad
    male = rng.random(n) < 0.5
    tiv = rng.normal(np.where(male, 1550.0, 1380.0), 110.0)
    # disease stage: Gamma(shape k, mean site.severity) by inverse CDF, so that a subject keeps its quantile
    # when k or the mean change (smooth calibration, common random numbers)
    severity = gamma.ppf(rng.random(n), spec.severity_shape) * site.severity / spec.severity_shape
    z = rng.normal(size=(n, spec.num_factors))
    pair = rng.normal(size=(n, len(AAL_REGIONS))).repeat(2, axis=1)
    own = rng.normal(size=(n, len(AAL90_ROIS)))
    noise = spec.roi_noise * (np.sqrt(spec.homologue_corr) * pair + np.sqrt(1 - spec.homologue_corr) * own)
    log_v = (anat["log_mu"] + spec.beta_tiv * np.log(tiv / 1450.0)[:, None]
             - spec.age_effect * anat["ageing"] * ((age - 73.0) / 10.0)[:, None]
             - (ad * severity)[:, None] * spec.effect * anat["atrophy"]
             + z @ anat["loadings"].T + noise)  # (n, 90)
    return np.exp(log_v) * anat["gains"][k] + anat["offsets"][k]


def make_adni_cohort(seed: int = 0, spec: CohortSpec | None = None) -> pd.DataFrame:
    """The synthetic cohort as an ADNI-style table (the schema :func:`fedlab.data.tabular.load_adni_csv` reads).

    Args:
        seed: Draws the subjects (the anatomy is fixed by ``spec.structure_seed``).
        spec: Cohort knobs; default :class:`CohortSpec` (calibrated).

    Returns:
        One row per subject: ``subject_id`` (e.g. "S1-0001"), ``phase`` (site name), ``diagnosis``
        ("AD" or "NC"), then the 90 ROI volumes named as in :data:`AAL90_ROIS` (cm^3). Rows are
        shuffled within each phase.
    """
    spec = spec or CohortSpec()
    anat = _structure(spec)
    rng = np.random.default_rng(seed)
    frames = []
    for k, site in enumerate(spec.sites):
        vols = _subjects(site, k, spec, anat, rng)
        diag = np.array(["AD"] * site.num_ad + ["NC"] * site.num_nc)
        order = rng.permutation(len(diag))
        df = pd.DataFrame(vols[order], columns=list(AAL90_ROIS))
        df.insert(0, "diagnosis", diag[order])
        df.insert(0, "phase", site.name)
        df.insert(0, "subject_id", [f"S{k + 1}-{i:04d}" for i in range(len(df))])
        frames.append(df)
    return pd.concat(frames, ignore_index=True)
