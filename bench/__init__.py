"""Benchmarks that print figures (run with `.venv/bin/python -m bench.<name>`); see bench/README.md."""
