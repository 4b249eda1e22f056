"""``python -m cnnlens``: the ``cnnlens`` command."""
import sys

from .cli import main

sys.exit(main())
