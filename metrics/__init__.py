"""Hugging Face `evaluate` modules of culturesim; each folder is a self-contained module."""
