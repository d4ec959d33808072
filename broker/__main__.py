"""``python -m broker``: run one broker (see broker.main)."""
import sys

from broker.main import main

sys.exit(main())
