"""xrfweb's science: forward model, network, training, tiled enhancement, formats.

Plain Python (numpy, torch, h5py); it never imports Django.
"""
__version__ = "0.1.0"


class Cancelled(Exception):
    """Raised inside training or enhancement when the caller's cancel callback says stop."""


class UserError(Exception):
    """A problem with the user's input, worded for the user (the CLI prints it, exit 2)."""
