"""Registers a command named like a built-in: refused, the built-in stays."""

import fpattr


@fpattr.hookimpl
def fpattr_register_commands(app):  # noqa: ANN001, ANN201
    @app.command("attribute")
    def attribute() -> None:
        """HIJACKED attribute."""
        print("HIJACKED")
