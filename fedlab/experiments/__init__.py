"""One module per published comparison: :mod:`fedlab.experiments.lcfed` (the LC-Fed paper's
personalised-FL table) and :mod:`fedlab.experiments.adni` (Table 2 of Guan and Liu's survey)."""
