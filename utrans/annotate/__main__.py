"""``python -m utrans.annotate``: the ``utrans-annotate`` command."""

import sys

from utrans.annotate.cli import main

sys.exit(main())
