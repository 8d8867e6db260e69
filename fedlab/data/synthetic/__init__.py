"""Embedded synthetic stand-ins for every dataset, so each lesson runs offline with no credentials.

Segmentation federations (``segmentation.py``): :func:`make_federation` with "prostate", "polyp" or
"fundus"; each site's acquisition, population and annotation style is a :class:`SiteStyle`
(defaults in ``SITE_STYLES``, the fields of each heterogeneity axis in ``AXES``). Every mechanism,
its knob and its real-world counterpart are documented in ``styles.py`` (site facts and sizes),
``scenes.py`` (what makes the images hard) and ``acquisition.py`` (the scanner / camera chain).
"""

from fedlab.data.synthetic.adni import AAL90_ROIS, CohortSpec, make_adni_cohort
from fedlab.data.synthetic.segmentation import (
    DATASETS,
    SiteSample,
    make_federation,
    make_fundus,
    make_polyp,
    make_prostate,
    sample_site,
)
from fedlab.data.synthetic.styles import AXES, PIXEL_MM, REFERENCE_STYLES, SITE_STYLES, SiteStyle

__all__ = [
    "AAL90_ROIS",
    "AXES",
    "PIXEL_MM",
    "CohortSpec",
    "make_adni_cohort",
    "DATASETS",
    "REFERENCE_STYLES",
    "SITE_STYLES",
    "SiteSample",
    "SiteStyle",
    "make_federation",
    "make_fundus",
    "make_polyp",
    "make_prostate",
    "sample_site",
]
