"""``python -m xorlab`` is the same program as the ``xorlab`` command."""

from .cli import main

main()
