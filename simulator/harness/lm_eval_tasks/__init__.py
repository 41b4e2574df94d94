"""The lm-evaluation-harness task folder (YAML plus ``utils.py``); see ``utils``'s docstring."""
