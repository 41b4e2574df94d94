"""The culturesim Gradio Space."""
