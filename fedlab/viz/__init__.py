"""Plots used by the notebooks, one module per lesson family. matplotlib only; every function returns
its Figure (no ``plt.show()``).

* :mod:`fedlab.viz.federation`: sites and their heterogeneity, training curves, per-site bars,
  cross-site heatmaps, layer-sharing strips (lessons 01-03);
* :mod:`fedlab.viz.personalization`: per-site scores and the heterogeneity sweep (lesson 02);
* :mod:`fedlab.viz.lcfed`: LC-Fed's gates, their correlation and the calibration steps (lesson 03);
* :mod:`fedlab.viz.classification`: the tabular comparison (lesson 04);
* :mod:`fedlab.viz.deploy`: a local Flower deployment's processes and round times (lesson 05);
* :mod:`fedlab.viz.privacy`: reconstructions, leakage sweeps, masked uploads, privacy-utility and epsilon (06-07);
* :mod:`fedlab.viz.robustness`: aggregation rules, scenarios and site weights (lesson 08);
* :mod:`fedlab.viz.heterogeneity`: client drift, label skew (lesson 09).

Everything public is also importable from ``fedlab.viz`` directly.
"""

from fedlab.viz.classification import (
    cross_matrix,
    plot_communication,
    plot_cross_matrix,
    plot_metrics_by_setting,
    plot_settings_diagram,
)
from fedlab.viz.deploy import plot_deployment, plot_round_times
from fedlab.viz.federation import (
    plot_cross_site,
    plot_intensity_histograms,
    plot_layer_sharing,
    plot_learning_curves,
    plot_metric_vs_bytes,
    plot_site_samples,
)
from fedlab.viz.heterogeneity import plot_axis_samples, plot_label_counts, plot_quadratic_paths
from fedlab.viz.lcfed import plot_calibration_steps, plot_gate_correlation, plot_site_gates
from fedlab.viz.personalization import plot_site_scores, plot_sweep_gain
from fedlab.viz.privacy import (
    plot_clipping,
    plot_epsilon_ledger,
    plot_leakage_sweep,
    plot_masked_upload,
    plot_privacy_utility,
    plot_reconstructions,
)
from fedlab.viz.robustness import plot_aggregation_rules, plot_grouped_bars, plot_site_weights

__all__ = [
    "cross_matrix",
    "plot_aggregation_rules",
    "plot_axis_samples",
    "plot_grouped_bars",
    "plot_label_counts",
    "plot_quadratic_paths",
    "plot_site_weights",
    "plot_calibration_steps",
    "plot_clipping",
    "plot_communication",
    "plot_cross_matrix",
    "plot_cross_site",
    "plot_deployment",
    "plot_epsilon_ledger",
    "plot_intensity_histograms",
    "plot_layer_sharing",
    "plot_leakage_sweep",
    "plot_learning_curves",
    "plot_masked_upload",
    "plot_metric_vs_bytes",
    "plot_metrics_by_setting",
    "plot_round_times",
    "plot_privacy_utility",
    "plot_reconstructions",
    "plot_settings_diagram",
    "plot_gate_correlation",
    "plot_site_gates",
    "plot_site_scores",
    "plot_sweep_gain",
    "plot_site_samples",
]
