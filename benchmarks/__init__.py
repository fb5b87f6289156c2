"""Side-by-side speed measurements of ppl_models against baselines (``python -m benchmarks``)."""
