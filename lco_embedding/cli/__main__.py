"""``python -m lco_embedding.cli`` = ``lco-embed``."""

from lco_embedding.cli.main import main

main()
