"""Experiment drivers behind the notebooks: one module per comparison."""
