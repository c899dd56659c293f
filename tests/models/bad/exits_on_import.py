"""A model file that calls sys.exit while being imported."""

import sys

sys.exit(5)
