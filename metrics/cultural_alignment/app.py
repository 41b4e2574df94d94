"""The metric's Space: the evaluate module behind a small web form.

The evaluate library's own metric Spaces call ``evaluate.utils.launch_gradio_widget``; it is
used here too when the installed gradio still has the ``gr.inputs`` API it was written for
(gradio < 4). On newer gradio (the Space pins 6.x) the same widget is built here: inputs as
one JSON object, the result dict as JSON, the metric card below.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import evaluate
import gradio as gr
from evaluate.utils import launch_gradio_widget
from evaluate.utils.gradio import parse_readme

HERE = Path(__file__).resolve().parent
SCRIPT = str(HERE / "cultural_alignment.py")

EXAMPLE = {
    "predictions": [[0, 0, 0, 1], [2, 2, 1, 2]],
    "references": [[0.6, 0.4], [0.1, 0.2, 0.7]],
    "ordinal": [False, True],
    "value_dimensions": [["EVI"], ["TDI"]],
    "zero_policy": "paper",
    "bootstrap_samples": 1000,
}

INPUT_KEYS = (
    "predictions", "probabilities", "references", "ordinal", "value_dimensions", "demographics", "question_ids",
    "num_options", "zero_policy", "smoothing", "bootstrap_samples", "participant_bootstrap_samples", "confidence",
    "seed", "return_per_question",
)


def load_modules() -> dict[str, Any]:
    """Both configurations of the module, loaded from this folder."""
    return {"default": evaluate.load(SCRIPT), "probabilities": evaluate.load(SCRIPT, "probabilities")}


def score_json(text: str, modules: dict[str, Any]) -> dict[str, Any]:
    """Score the inputs given as one JSON object; a "probabilities" key selects that configuration."""
    try:
        inputs = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the inputs are not valid JSON: {exc}") from None
    if not isinstance(inputs, dict):
        raise ValueError('give one JSON object, e.g. {"predictions": [[0, 1]], "references": [[0.5, 0.5]]}')
    unknown = sorted(set(inputs) - set(INPUT_KEYS))
    if unknown:
        raise ValueError(f"unknown inputs {unknown}; valid: {', '.join(INPUT_KEYS)}")
    if "probabilities" in inputs:
        if "predictions" in inputs:
            raise ValueError("give either predictions (answers) or probabilities, not both")
        inputs["predictions"] = inputs.pop("probabilities")
        return modules["probabilities"].compute(**inputs)
    return modules["default"].compute(**inputs)


def build_widget(modules: dict[str, Any]) -> gr.Interface:
    def compute(text: str) -> dict[str, Any]:
        try:
            return score_json(text, modules)
        except ValueError as exc:
            raise gr.Error(str(exc)) from None

    metric = modules["default"]
    return gr.Interface(
        fn=compute,
        inputs=gr.Code(value=json.dumps(EXAMPLE, indent=1), language="json", label="Inputs (one JSON object)"),
        outputs=gr.JSON(label=metric.name),
        title=f"Metric: {metric.name}",
        description=metric.info.description,
        article=parse_readme(HERE / "README.md"),
        flagging_mode="never",
        api_name="predict",
    )


def serve() -> None:
    """Launch the widget: what the Space runs (``python app.py``)."""
    if hasattr(gr, "inputs"):  # gradio < 4: the evaluate library's own widget
        launch_gradio_widget(evaluate.load(SCRIPT))
    else:
        build_widget(load_modules()).launch()


if __name__ == "__main__":
    serve()
