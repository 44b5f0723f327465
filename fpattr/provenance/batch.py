"""Provenance over many inputs: the rows ``fpattr provenance`` prints, walked like
``fpattr attribute`` walks (files and folders, recursive, nothing dropped silently)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fpattr.provenance.read import describe, read_provenance


@dataclass
class Counts:
    """What a provenance run saw, for the summary and the exit code."""

    n_inputs: int = 0  #: inputs that should have been read (skipped ones not counted)
    n_ok: int = 0
    n_skipped: int = 0
    n_claims: int = 0  #: files whose metadata names a generator
    n_c2pa: int = 0  #: files with a C2PA manifest
    n_metadata_errors: int = 0  #: files read, with a malformed metadata block
    by_generator: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The run summary (JSON-able)."""
        return {
            "n_inputs": self.n_inputs,
            "n_ok": self.n_ok,
            "n_failed": self.n_inputs - self.n_ok,
            "n_skipped": self.n_skipped,
            "n_claims": self.n_claims,
            "n_c2pa": self.n_c2pa,
            "n_metadata_errors": self.n_metadata_errors,
            "claimed_generators": dict(sorted(self.by_generator.items())),
        }


def provenance_rows(
    paths: Iterable[Any],
    counts: Counts,
    *,
    exclude: Iterable[Any] = (),
    trust_anchors: str | None = None,
    trust_source: str | None = None,
) -> Iterator[dict[str, Any]]:
    """One row per input: ``path``, ``sha256``, ``status`` (ok / error / skipped), ``error``,
    ``summary`` and the provenance record's keys (:func:`read_provenance`).

    A file that is not an image is skipped inside a folder and failed when named.
    Malformed metadata does not fail a file: it is listed in the row's ``errors``.
    """
    from fpattr.io.loader import sha256_file
    from fpattr.io.sniff import HEAD_BYTES, image_kind
    from fpattr.io.sniff import describe as describe_bytes
    from fpattr.io.walk import iter_inputs

    for item in iter_inputs(paths, exclude=exclude):
        row: dict[str, Any] = {"path": os.fsdecode(os.fspath(item.path)), "sha256": None}
        if item.skipped:
            counts.n_skipped += 1
            yield row | {"status": "skipped", "error": item.error}
            continue
        error = item.error
        if error is None:
            try:
                with open(item.path, "rb") as f:
                    head = f.read(HEAD_BYTES)
            except OSError as exc:
                error = f"cannot read: {exc.strerror or exc}"
            else:
                if image_kind(head) is None:
                    reason = f"not an image by its content: {describe_bytes(head)}"
                    if item.in_folder:
                        counts.n_skipped += 1
                        yield row | {"status": "skipped", "error": reason}
                        continue
                    error = reason
        counts.n_inputs += 1
        if error is not None:
            yield row | {"status": "error", "error": error}
            continue
        rec = read_provenance(item.path, trust_anchors=trust_anchors, trust_source=trust_source)
        try:
            row["sha256"] = sha256_file(item.path)
        except OSError as exc:
            rec["errors"].append(f"sha256 not computed: {exc.strerror or exc}")
        counts.n_ok += 1
        if rec["claimed_generator"]:
            counts.n_claims += 1
            key = rec["claimed_generator"]
            counts.by_generator[key] = counts.by_generator.get(key, 0) + 1
        if isinstance(rec["c2pa"], dict) and rec["c2pa"].get("present"):
            counts.n_c2pa += 1
        if rec["errors"]:
            counts.n_metadata_errors += 1
        yield row | {"status": "ok", "error": None, "summary": describe(rec), **rec}
