import sys

from semcode.cli import main

sys.exit(main())
