"""The project's own held-out benchmark generators (not part of the installed fpattr package).

Imported as ``generators`` with ``benchmarks/`` on ``sys.path`` (the benchmark script's own
folder), so the module names cannot collide with the repository's top-level ``models/``.
"""
