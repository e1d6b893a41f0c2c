"""The small exception types users see: each carries one sentence."""


class DiracError(Exception):
    """Base class for every error meant for a user of dirac-demo."""


class InputError(DiracError):
    """An input image (or an argument) that cannot be used."""


class BitstreamError(DiracError):
    """A bitstream file that is empty, truncated, foreign or corrupted."""


class WeightsError(DiracError):
    """Model weights that are missing or do not match the model."""
