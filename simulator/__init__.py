"""culturesim's simulator: the DEF method (diverse simulated survey participants) on any backend."""

import os

__version__ = "0.1.0"

# On a shared or small CPU, OpenMP threads that spin while waiting make torch generation many
# times slower (measured here: 101-131 s vs 8.5 s for the same batch). Must be set before torch
# starts its thread pool; an explicit setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
