"""Fails at import time, like a plugin with a missing dependency."""

import fpattr_dependency_that_is_not_installed  # noqa: F401
