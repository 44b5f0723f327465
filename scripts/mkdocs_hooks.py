"""mkdocs hooks for the fpattr site (``hooks:`` in mkdocs.yml).

- docs/performance.md is written whole by ``benchmarks/performance.py``: nothing on it is
  filled in here.
- Sphinx roles in docstrings (``:class:`x```), which mkdocstrings leaves as text, are
  shown as plain code.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|meth|func|mod|attr|data|exc|obj):(?=<code>)")


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    return _ROLE.sub("", html)
