"""`python -m graphdsl`."""

import sys

from graphdsl.cli import main

sys.exit(main())
