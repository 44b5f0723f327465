"""Evaluation protocols and metrics (numpy only)."""
