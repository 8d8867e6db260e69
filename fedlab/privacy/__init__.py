"""What the server sees, and how to limit it: gradient leakage, secure aggregation, differential privacy.

* :mod:`fedlab.privacy.leakage`: the analytic inversion of a logistic-regression update, optimisation attacks
  (DLG, inverting gradients) and the relative leakage score (lesson 06);
* :mod:`fedlab.privacy.secure_aggregation`: fixed-point encoding, pairwise masks, the :class:`SecureAggregation`
  strategy wrapper (lesson 06);
* :mod:`fedlab.privacy.accounting`: (epsilon, delta) of a schedule of noisy steps, through Opacus's RDP accountant;
* :mod:`fedlab.privacy.dp`: DP-SGD at every site with one accountant per site (:class:`DPFedAvg`, lesson 07);
* :mod:`fedlab.privacy.central_dp`: clipping and noise at the server (:class:`CentralDP`, lesson 07).

The DP parts need Opacus: ``pip install "fedlab-med[privacy]"``.
"""
