"""Data containers, embedded synthetic federations and real-data loaders."""

from fedlab.data.errors import DataError
from fedlab.data.federation import Federation, Site, Split
from fedlab.data.loading import load_federation

__all__ = ["DataError", "Federation", "Site", "Split", "load_federation"]
