"""``python -m llm_marl``: the ``llm-marl`` command."""

import sys

from llm_marl.cli import main

sys.exit(main())
