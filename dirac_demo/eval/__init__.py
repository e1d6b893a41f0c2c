"""Evaluation tools, each run as ``python -m dirac_demo.eval.<tool>``: ``evaluate`` (a dataset's
rate–distortion–perception points as JSON), ``report`` and ``plots`` (tables and figures from
those files) and ``benchmark`` (speed); ``metrics`` holds the measures they use (SWD itself is
:mod:`dirac_demo.swd`, shared with the page), ``common`` the flags and machine facts they share."""
