"""Evaluation tools, each run as ``python -m dirac_demo.eval.<tool>``: ``evaluate`` (a dataset's
rate–distortion–perception points as JSON), ``report`` and ``plots`` (tables and figures from
those files) and ``benchmark`` (speed); ``metrics`` and ``swd`` are the measures they use,
``common`` the flags and machine facts they share."""
