"""Data containers, embedded synthetic federations and real-data loaders."""

from fedlab.data.federation import Federation, Site, Split

__all__ = ["Federation", "Site", "Split"]
