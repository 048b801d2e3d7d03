"""The image builder is host tooling in image-build/, not part of the phone's package."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "image-build"))
