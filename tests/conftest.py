"""Shared test set-up: tests/ is importable (realmodels), real models are cached in .cache/models."""
