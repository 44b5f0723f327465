"""Offline training of the fingerprint extractor (torch; never imported by inference)."""
