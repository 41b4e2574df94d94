"""culturesim's simulator: the DEF method (diverse simulated survey participants) on any backend."""

__version__ = "0.1.0"
