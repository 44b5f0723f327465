"""Deliberately broken plugins (fpattr's tests check the CLI survives them)."""
