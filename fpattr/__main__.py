"""``python -m fpattr`` = the ``fpattr`` command."""

from fpattr.cli import main

main()
