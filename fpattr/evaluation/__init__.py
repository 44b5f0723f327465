"""Evaluation protocols and metrics (numpy only)."""

#: Random halves of the generators in the generator-disjoint protocol (each enrolled once,
#: so twice as many folds). With 3 the project benchmark's pooled single-image ECE ranged
#: 0.076-0.102 over seeds 0-2 and the public generators' sets of 5 0.046-0.081; with 10,
#: 0.035-0.057 and 0.039-0.050 (docs/benchmarks.md, "How many splits"). Here, not in
#: decisions.py: the CLI's option shows it without importing numpy.
DISJOINT_SPLITS = 10
