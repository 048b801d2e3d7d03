"""``python -m peerline`` is the ``peerline`` command."""

import sys

from peerline.app.cli import main

sys.exit(main())
