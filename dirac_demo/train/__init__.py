"""Training tools, each run as ``python -m dirac_demo.train.<tool>``: ``codec`` (the neural base
codec), ``dirac`` (the residual diffusion model), ``thresholds`` (the rate-dependent threshold
table) and ``export`` (weights into ``assets/``); ``data`` and ``common`` are their shared parts."""
