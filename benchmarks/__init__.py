"""Benchmarks of the stepweave engine against a plain-asyncio baseline.

Run them with ``python -m benchmarks.run`` (see ``benchmarks/README.md``). Nothing here is
imported by the package or by the test suite.
"""
