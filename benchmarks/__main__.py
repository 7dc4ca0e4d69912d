"""``python -m benchmarks`` is ``tritonnmr bench``."""
import sys

from tritonnmr.apps.cli import main

sys.exit(main(["bench"] + sys.argv[1:]))
