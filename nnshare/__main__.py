"""``python -m nnshare``: the same command line as the ``nnshare`` script."""

from .cli import main

main()
