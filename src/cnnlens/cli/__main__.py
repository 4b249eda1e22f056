"""``python -m cnnlens.cli``: the ``cnnlens`` command."""
import sys

from . import main

sys.exit(main())
