"""``python -m acezoo`` runs the command line."""
import sys

from acezoo.cli import main

sys.exit(main())
