import sys

from lfs_gui.cli import main

sys.exit(main())
