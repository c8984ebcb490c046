"""Benchmarks that print their figures beside a ceiling measured in the same run.

`python -m bench` (bench/__main__.py) is the side-by-side harness behind `make bench`;
loadgen_capacity.py measures the load generator itself.
"""
