"""Make the in-tree library importable without an install."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "meta-seccomp-py", "lib")
if LIB not in sys.path:
    sys.path.insert(0, LIB)
