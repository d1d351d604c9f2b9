import sys

from ingestor.cli import main

sys.exit(main())
