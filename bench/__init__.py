"""Benchmarks: `python -m bench` runs them all; each module also runs alone."""
import os
import sys

# Progress bars redraw in a terminal; in a log they print every 10 s instead of every update.
if not sys.stderr.isatty():
    os.environ.setdefault("TQDM_MININTERVAL", "10")
