"""``python -m devkit``: the development kit's command line (see ``devkit.cli``)."""

from devkit.cli import main

main()
