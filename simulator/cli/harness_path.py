"""``culturesim harness-path``: print where the lm-evaluation-harness task folder is.

So a user never has to find the installed package by hand:
``lm_eval --include_path "$(culturesim harness-path)" --tasks culturesim_us ...``.
"""

from __future__ import annotations

import argparse

from culturesim.simulator.embedded import embedded_model_folder
from culturesim.simulator.harness.common import LM_EVAL_TASK_DIR

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Print the folder of culturesim's lm-evaluation-harness tasks (culturesim_us, culturesim_us_2024, culturesim_cn, "
        "culturesim_jp, culturesim_eg), for lm_eval --include_path. The inspect_ai task needs no path: "
        "inspect eval culturesim/us."
    )
    parser.add_argument(
        "--embedded-model", action="store_true",
        help="instead, print a transformers folder of the embedded model (converted from its GGUF file once, "
             "about 540 MB, cached), for inspect's hf provider: --model hf/smollm2 -M model_path=FOLDER",
    )  # fmt: skip


def main(args: argparse.Namespace) -> int:
    if args.embedded_model:
        print(embedded_model_folder())
        return 0
    if not (LM_EVAL_TASK_DIR / "culturesim_us.yaml").is_file():
        raise FileNotFoundError(
            f"The lm-eval task files are missing from {LM_EVAL_TASK_DIR}; reinstall culturesim "
            '(pip install --force-reinstall "culturesim[harness]").'
        )
    print(LM_EVAL_TASK_DIR)
    return 0
