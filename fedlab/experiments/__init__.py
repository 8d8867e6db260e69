"""One module per published comparison or lesson experiment: :mod:`fedlab.experiments.lcfed` (the LC-Fed paper's
personalised-FL table), :mod:`fedlab.experiments.adni` (Table 2 of Guan and Liu's survey),
:mod:`fedlab.experiments.leakage` (lesson 06's attacks and defences), :mod:`fedlab.experiments.differential_privacy`
(lesson 07's privacy-utility runs) and :mod:`fedlab.experiments.cohort` (the synthetic ADNI-like cohort as a
two-site federation for lessons 06-07)."""
