"""``python -m gempy_gravinv`` runs the CLI."""
import sys

from gempy_gravinv.cli import main

sys.exit(main())
