"""`python -m controller.demo`: the demo of `make demo`."""

import sys

from controller.demo.run import main

sys.exit(main())
