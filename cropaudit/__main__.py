import sys

from cropaudit.cli import main

sys.exit(main())
