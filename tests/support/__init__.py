"""Helpers shared by the unit and the integration tests, written once.

Importable as `support` because pytest's pythonpath (pyproject.toml) has tests/ on it.
"""
