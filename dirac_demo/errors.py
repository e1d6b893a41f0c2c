"""The small exception types users see: each carries one sentence."""


class DiracError(Exception):
    """Base class for every error meant for a user of dirac-demo."""


class InputError(DiracError):
    """An input image (or an argument) that cannot be used."""


class TooLargeError(InputError):
    """An image over a pixel limit; ``advice`` says how to bring it under (the caller's own way)."""

    def __init__(self, width: int, height: int, limit: int, advice: str = "downscale it first") -> None:
        super().__init__(f"The image is {width}x{height} ({width * height / 1e6:.1f} MP), over the "
                         f"{limit / 1e6:.1f} MP limit; {advice}.")
        self.size, self.limit, self.advice = (width, height), limit, advice

    def __reduce__(self):
        return TooLargeError, (*self.size, self.limit, self.advice)

    def advise(self, advice: str) -> "TooLargeError":
        """The same refusal, saying how this caller downscales."""
        return TooLargeError(*self.size, self.limit, advice)


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
