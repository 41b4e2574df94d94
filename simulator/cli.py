"""The ``culturesim`` command: one entry point, one subcommand per job.

``DESCRIPTION`` is what ``culturesim --help`` opens with: what the tool does, in plain text.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``main(args) -> int``; this file only wires them, importing a module when its command is
used, so ``culturesim --help`` stays fast and a broken optional part cannot break the rest.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

DESCRIPTION = (
    "culturesim measures how well a language model's values match real survey populations "
    "(GSS, World Values Survey), the way the DEF paper does (Liu et al. 2025): it runs the model "
    "as many simulated survey participants, turns their answers into a distribution per question, "
    "and compares it with how real respondents answered. Typical use: culturesim simulate "
    "(writes a run folder), culturesim score (its numbers), culturesim report (an HTML report)."
)
EPILOG = "Run culturesim COMMAND --help for a command's options."

# command path -> (module, one-line help)
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("dataset", "build"): ("dataset_builder.build", "build the Hub-ready dataset folder from ../shared/sources"),
    ("dataset", "publish"): ("dataset_builder.publish", "upload a built dataset folder to the Hugging Face Hub"),
    ("dataset", "expand"): ("dataset_builder.expand", "rephrase each question with an LLM, reviewed in code (a paraphrases config)"),
    ("simulate",): ("simulator.runner", "run a model as many simulated survey participants (DEF)"),
    ("merge",): ("simulator.merge", "join the shards of a run split with --shard K/N"),
    ("score",): ("simulator.analysis.scoring", "score a run's responses against the human distributions"),
    ("report",): ("simulator.analysis.report", "the paper's analyses for one or more runs, as HTML, JSON and PNG"),
    ("ablate",): ("simulator.analysis.ablation", "diversity-plan and language ablations on the same questions"),
    ("invariance",): ("simulator.analysis.invariance", "how far answers move under option order, labels, reversal, paraphrase"),
    ("harness-path",): ("simulator.harness.cli", "print the lm-evaluation-harness task folder (lm_eval --include_path)"),
    ("metric", "publish"): ("metrics.publish", "upload the evaluate metric module as a Hugging Face Space"),
    ("space", "launch"): ("space.cli", "launch the Gradio Space locally"),
    ("space", "publish"): ("space.publish", "upload the Space folder to the Hugging Face Hub"),
}

GROUP_HELP = {
    "dataset": "build or publish the survey dataset (questions with human answer distributions)",
    "metric": "publish the evaluate metric module",
    "space": "launch or publish the Gradio app (culturesim space alone launches it)",
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="culturesim", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    top = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups: dict[str, argparse._SubParsersAction] = {}
    wanted = argv[0] if argv and not argv[0].startswith("-") else None
    for path, (module_name, help_text) in COMMANDS.items():
        if len(path) == 1:
            sub = top.add_parser(path[0], help=help_text)
        else:
            if path[0] not in groups:
                group_parser = top.add_parser(path[0], help=GROUP_HELP.get(path[0], f"{path[0]} commands"))
                groups[path[0]] = group_parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
            sub = groups[path[0]].add_parser(path[1], help=help_text)
        sub.set_defaults(_module=module_name)
        # Only the chosen command's module is imported to add its arguments.
        if wanted == path[0]:
            importlib.import_module(module_name).add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `culturesim space` alone launches the Space.
    if argv[:1] == ["space"] and (len(argv) == 1 or argv[1].startswith("-")) and "-h" not in argv and "--help" not in argv:
        argv.insert(1, "launch")
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    module = importlib.import_module(args._module)
    try:
        return int(module.main(args) or 0)
    except (ValueError, FileNotFoundError, ModuleNotFoundError, PermissionError, RuntimeError) as exc:
        print(f"culturesim: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
