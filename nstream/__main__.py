import sys

from nstream.cli import main

sys.exit(main())
