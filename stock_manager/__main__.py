import sys

from stock_manager.cli import main

sys.exit(main())
