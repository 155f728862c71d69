import sys

from traders.harness.cli import main

sys.exit(main())
