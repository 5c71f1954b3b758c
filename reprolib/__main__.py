import sys

from reprolib.cli import main

sys.exit(main())
