"""The error every real-data loader raises for a problem with files on disk."""


class DataError(ValueError):
    """A problem with files on disk; the message names the file and says how to fix it."""
