"""``python -m govlake.cli …``: the same as the ``govlake`` console script."""

from govlake.cli import main

main()
