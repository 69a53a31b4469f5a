"""``python -m limner.cli``."""

from limner.cli import main

main()
