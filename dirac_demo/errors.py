"""The small exception types users see: each carries one sentence."""


class DiracError(Exception):
    """Base class for every error meant for a user of dirac-demo."""


class InputError(DiracError):
    """An input image (or an argument) that cannot be used."""


class BitstreamError(DiracError):
    """A bitstream file that is empty, truncated, foreign or corrupted."""


class WeightsError(DiracError):
    """Model weights that are missing or do not match the model."""


class NoModelError(WeightsError):
    """No trained DIRAC model is loaded for a codec; ``hint`` says what to do instead."""

    def __init__(self, codec: str, hint: str = "") -> None:
        super().__init__(f"No trained DIRAC model for the {codec} codec is loaded"
                         + (f": {hint}." if hint else "."))
        self.codec = codec
