import sys

from stagecheck.sandbox.standins.runner import main

sys.exit(main())
