"""Evaluation tools, each run as ``python -m dirac_demo.eval.<tool>``: ``evaluate`` (a dataset's
rate–distortion–perception points as JSON), ``report`` (tables and plots from those files) and
``benchmark`` (speed); ``metrics`` and ``swd`` are the measures they use."""
