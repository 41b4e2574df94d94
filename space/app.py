"""The culturesim Space: pick a model, watch the simulated survey, see how it aligns.

This file only lays out the tabs and wires their events (the gradio demos' habit); what the
events do lives in ``culturesim.space`` (its ``__init__``) as plain functions. Run it with ``culturesim space`` (or
``python space/app.py``); on a Hugging Face Space it is the ``app_file``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Before torch loads OpenMP (see space/cli.py): idle threads sleep instead of spinning.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

if __package__ in (None, ""):  # run as a script: make the culturesim packages importable
    for _root in (Path(__file__).resolve().parent, Path(__file__).resolve().parent.parent):
        if (_root / "simulator").is_dir() and str(_root) not in sys.path:
            sys.path.insert(0, str(_root))
            break

import logging  # noqa: E402
import re  # noqa: E402
import threading  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402
import pandas as pd  # noqa: E402

from culturesim.space import device  # noqa: E402,F401  (imports spaces before anything imports torch: ZeroGPU)
from culturesim import space  # noqa: E402
from culturesim.space.explore import explore_languages, explore_message  # noqa: E402
from culturesim.space.glossary import glossary_markdown  # noqa: E402
from culturesim.space.structure import STRUCTURE_TITLE, structure_panel  # noqa: E402
from culturesim.space.leaderboard import (DEFAULT_SCORE, display_frame, leaderboard_figure, leaderboard_frame,  # noqa: E402
                                          leaderboard_note, load_leaderboard, score_choices, slice_choices)

log = logging.getLogger(__name__)

__all__ = ["SpaceSettings", "build_app", "launch", "preload"]

FIGURE_TITLES = space.FIGURE_TITLES
GENERATION = "generation"  # the concurrency_id of the Run event (turns on the local model: space.GenerationSlots)
_MARKDOWN = re.compile(r"([\\`*_{}\[\]<>#|~])")
_ACTIVE: dict[str, threading.Event] = {}  # session -> its running job's cancel flag (the Cancel button sets it)


def _md(text: str) -> str:
    """``text`` shown literally in a gr.Markdown (a redacted key's ``***`` must not turn into bold)."""
    return _MARKDOWN.sub(r"\\\1", text)


@dataclass(frozen=True)
class SpaceSettings:
    """Where the Space reads and writes, and its limits."""

    dataset_dir: Path | None = None
    runs_dir: Path | None = None
    limits: space.SpaceLimits | None = None
    hardware: space.Hardware | None = None


def _results_panel(prefix: str) -> dict[str, Any]:
    """The components that show a scored run (Simulate and Score tabs share the layout); hidden
    until there is a result, so no empty plot boxes show before a run."""
    out: dict[str, Any] = {}
    with gr.Column(visible=False, elem_id=f"{prefix}-results") as column:
        out["summary"] = gr.Markdown(elem_id=f"{prefix}-summary")
        out["scores"] = gr.Dataframe(pd.DataFrame(columns=space.SCORE_COLUMNS),
                                     label="Scores with 95% bootstrap confidence intervals (kl, js, wasserstein: "
                                           "lower is better; match_rate: higher is better; see the glossary)",
                                     interactive=False, elem_id=f"{prefix}-scores", wrap=True, max_height=520,
                                     column_widths=["11%", "15%", "8%", "8%", "8%", "7%", "43%"])
        plots = {name: dict(label=title, show_label=False, elem_id=f"{prefix}-fig-{name}")
                 for name, title in FIGURE_TITLES.items()}  # figures carry their own titles
        with gr.Row():
            out["dimensions"] = gr.Plot(**plots["dimensions"])
            out["culture_map"] = gr.Plot(**plots["culture_map"])
        # the bias heatmaps are two panels wide: a row of their own keeps their labels readable
        out["bias"] = gr.Plot(**plots["bias"])
        with gr.Row():
            out["insensitivity"] = gr.Plot(**plots["insensitivity"])
            out["questions"] = gr.Plot(**plots["questions"])
        # structure fidelity (space/structure.py): its table, then the correlation heatmaps against the yardstick
        out["structure_text"] = gr.Markdown(elem_id=f"{prefix}-structure")
        out["structure"] = gr.Plot(label=STRUCTURE_TITLE, show_label=False, elem_id=f"{prefix}-fig-structure")
        out["files"] = gr.File(label="Downloads: responses.jsonl, scores.json, report", file_count="multiple",
                               interactive=False, elem_id=f"{prefix}-files")
    out["column"] = column
    return out


def _result_values(panel: dict[str, Any], result: space.JobResult | None) -> dict[Any, Any]:
    """What the panel shows for ``result`` (None: hidden and empty)."""
    if result is None:
        values: dict[Any, Any] = {panel["summary"]: "", panel["scores"]: space.scores_table({}), panel["files"]: None,
                                  panel["column"]: gr.update(visible=False)}
        return values | {panel[name]: None for name in FIGURE_TITLES} | {panel["structure_text"]: "",
                                                                          panel["structure"]: None}
    structure_text, structure_plot = structure_panel(result.run_dir, result.scores)
    values = {panel["structure_text"]: structure_text, panel["structure"]: structure_plot,
              panel["summary"]: result.summary, panel["scores"]: result.table,
              panel["files"]: [str(p) for p in result.files], panel["column"]: gr.update(visible=True)}
    return values | {panel[name]: result.figures.get(name) for name in FIGURE_TITLES}


def _glossary() -> None:
    with gr.Accordion("Glossary: what the scores, abbreviations and statuses mean", open=False,
                      elem_id="glossary"):
        gr.Markdown(glossary_markdown())


def build_app(settings: SpaceSettings | None = None) -> gr.Blocks:
    """The Blocks app (not launched)."""
    settings = settings or SpaceSettings()
    hardware = settings.hardware or space.detect_hardware()
    limits = settings.limits or space.SpaceLimits.for_hardware(hardware)
    runs_dir = Path(settings.runs_dir or space.default_runs_dir())
    dataset_dir = settings.dataset_dir
    frame = space.dataset_frame(dataset_dir)
    choices = space.explore_choices(frame)
    cultures = [c for c in choices["culture"] if c != space.ALL]
    default = space.DEFAULT_JOB
    first_culture = default.culture if default.culture in cultures else cultures[0]
    warning = space.torch_build_warning(hardware)

    with gr.Blocks(title="culturesim: cultural value alignment of language models", analytics_enabled=False) as demo:
        gr.Markdown(
            "# culturesim\nHow close are a language model's values to those of real people? The model answers "
            "survey questions (GSS, World Values Survey) as many different simulated participants (the DEF "
            "method: varied locations, generation settings and memories); their answers are compared with "
            f"the real respondents'. Hardware: **{hardware.describe()}** · caps: {limits.max_responses} responses "
            f"per job, {limits.job_timeout_s:.0f} s per job." + (f"\n\n⚠️ Note: {warning}." if warning else "")
        )
        with gr.Tab("Simulate", id="simulate"):
            with gr.Row():
                model_kind = gr.Radio([(label, key) for key, label in space.model_kinds(hardware).items()],
                                      value="embedded", label="Model", elem_id="model-kind")
                hub_model = gr.Dropdown(space.suggested_models(limits), value=None, allow_custom_value=True,
                                        label="Hub model id or local path", visible=False, elem_id="hub-model",
                                        info=f"Suggested models that fit this hardware, or type any id (up to "
                                             f"{limits.max_model_params / 1e9:.1f}B parameters here)")
                claude_model = gr.Dropdown(list(space.CLAUDE_MODELS), value=space.CLAUDE_MODELS[0],
                                           label="Claude model", visible=False, allow_custom_value=True,
                                           elem_id="claude-model")
                api_key = gr.Textbox(label="Anthropic API key (used for this job only, never stored)", type="password",
                                     visible=False, elem_id="api-key", placeholder="sk-ant-…")
            claude_note = gr.Markdown(
                "⚠️ Claude's API takes no beam count (num_beams) and, on recent models, not temperature and top_p "
                "together: the DEF method's generation-settings variation is only partly applied to Claude "
                "participants. The results say which settings were not applied.", visible=False,
                elem_id="claude-note")
            with gr.Row():
                culture = gr.Dropdown(cultures, value=first_culture, label="Culture", elem_id="sim-culture")
                language = gr.Dropdown(space.language_choices(frame, first_culture), label="Language",
                                       value=space.language_choices(frame, first_culture)[0], elem_id="sim-language")
                select_by = gr.Radio(list(space.SELECT_BY), value=default.select_by, label="Questions by",
                                     elem_id="select-by")
                selection = gr.Dropdown([], multiselect=True, label="Value dimensions / topics", visible=False,
                                        elem_id="selection")
            with gr.Row():
                n_questions = gr.Number(default.questions, precision=0, minimum=1, label="Questions",
                                        elem_id="n-questions")
                n_participants = gr.Number(default.participants, precision=0, minimum=1, label="Participants",
                                           elem_id="n-participants")
                plan = gr.Dropdown(space.plan_choices(), value=default.plan, label="Diversity plan (all = DEF)",
                                   elem_id="plan")
            with gr.Accordion("DEF settings", open=False):
                with gr.Row():
                    max_new_tokens = gr.Number(default.max_new_tokens, precision=0, minimum=1,
                                               label="max_new_tokens", elem_id="max-new-tokens")
                    max_beams = gr.Number(default.max_beams, precision=0, minimum=1, label="max_beams (config plan)",
                                          info="paper: 5; each beam count is a separate batch on a CPU")
                    max_memory = gr.Number(default.max_memory, precision=0, minimum=1,
                                           label="max_memory (memory plan)", info="paper: 15")
                    seed = gr.Number(default.seed, precision=0, label="seed")
                with gr.Row():
                    t_low = gr.Number(default.temperature_range[0], label="temperature from")
                    t_high = gr.Number(default.temperature_range[1], label="temperature to")
                    p_low = gr.Number(default.top_p_range[0], label="top_p from")
                    p_high = gr.Number(default.top_p_range[1], label="top_p to")
            with gr.Row():
                run = gr.Button("Run", variant="primary", elem_id="run")
                cancel = gr.Button("Cancel", variant="stop", interactive=False, elem_id="cancel")
            status = gr.Markdown("Ready: press Run.", elem_id="run-status")
            responses = gr.Dataframe(pd.DataFrame(columns=space.RESPONSE_COLUMNS), label="Responses as they arrive",
                                     interactive=False, elem_id="responses", max_height=420, wrap=True,
                                     column_widths=["7%", "22%", "12%", "8%", "31%", "9%", "6%", "5%"])
            sim = _results_panel("sim")
            _glossary()

        with gr.Tab("Explore", id="explore"):
            with gr.Row():
                ex_culture = gr.Dropdown(choices["culture"], value=space.ALL, label="Culture", elem_id="ex-culture")
                ex_language = gr.Dropdown(choices["language"], value=space.ALL, label="Language", elem_id="ex-language")
                ex_source = gr.Dropdown(choices["source"], value=space.ALL, label="Source", elem_id="ex-source")
                ex_topic = gr.Dropdown(choices["topic"], value=space.ALL, label="Topic", elem_id="ex-topic")
                ex_dimension = gr.Dropdown(choices["value_dimension"], value=space.ALL, label="Value dimension",
                                           elem_id="ex-dimension")
                ex_search = gr.Textbox(label="Search text", elem_id="ex-search")
            initial = space.explore_table(frame)
            first_id = initial["id"].iloc[0] if len(initial) else None
            first_view = space.question_view(frame, first_id) if first_id else ("", None, None)
            ex_count = gr.Markdown(explore_message(initial, {}), elem_id="ex-count")
            ex_table = gr.Dataframe(initial, interactive=False, label="Questions (select a row)", max_height=360,
                                    elem_id="ex-table")
            ex_question = gr.Dropdown(list(initial["id"]), value=first_id, label="Question", elem_id="ex-question")
            ex_header = gr.Markdown(first_view[0], elem_id="ex-header")
            with gr.Row():
                ex_options = gr.Dataframe(first_view[1], label="Options and human shares", interactive=False,
                                          elem_id="ex-options")
            ex_plot = gr.Plot(first_view[2], label="Human answer distribution", elem_id="ex-plot")
            _glossary()

        with gr.Tab("Score", id="score"):
            gr.Markdown("Upload the `responses.jsonl` of a run made elsewhere (`culturesim simulate`), optionally with "
                        "its `config.json`; the rows are checked line by line and scored against the dataset.")
            upload = gr.File(label="responses.jsonl (and config.json)", file_count="multiple",
                             file_types=[".jsonl", ".json"], elem_id="upload")
            score_button = gr.Button("Score", variant="primary", elem_id="score")
            score_status = gr.Markdown(elem_id="score-status")
            scored = _results_panel("score")
            _glossary()

        with gr.Tab("Results", id="results"):  # the results table (culturesim results add / study): space/leaderboard.py
            board = load_leaderboard()
            board_note = gr.Markdown(leaderboard_note(board), elem_id="board-note")
            with gr.Row():
                board_score = gr.Dropdown(score_choices(board) or [DEFAULT_SCORE], value=DEFAULT_SCORE, label="Score",
                                          elem_id="board-score")
                board_slice = gr.Dropdown(slice_choices(board), value=space.ALL, label="Culture and language",
                                          elem_id="board-slice")
            board_table = gr.Dataframe(display_frame(leaderboard_frame(board)), interactive=False, wrap=True, max_height=480,
                                       label="Results (click a header to sort)", elem_id="board-table")
            board_plot = gr.Plot(leaderboard_figure(board), show_label=False, elem_id="board-plot")

        # ---- events -------------------------------------------------------------------

        def on_model_kind(kind: str):
            return (gr.update(visible=kind == "hub"), gr.update(visible=kind == "claude"),
                    gr.update(visible=kind == "claude"), gr.update(visible=kind == "claude"))

        model_kind.change(on_model_kind, model_kind, [hub_model, claude_model, api_key, claude_note], queue=False)

        def on_culture(culture_value: str, by: str):
            langs = space.language_choices(frame, culture_value)
            opts = space.selection_choices(frame, culture_value, langs[0], by)
            return gr.update(choices=langs, value=langs[0]), gr.update(choices=opts, value=[])

        culture.change(on_culture, [culture, select_by], [language, selection], queue=False)

        def on_selection_kind(culture_value: str, language_value: str, by: str):
            opts = space.selection_choices(frame, culture_value, language_value, by)
            return gr.update(choices=opts, value=[], visible=by != "all questions",
                             label="Value dimensions" if by == "value dimension" else "Topics")

        select_by.change(on_selection_kind, [culture, language, select_by], selection, queue=False)
        language.change(on_selection_kind, [culture, language, select_by], selection, queue=False)

        sim_outputs = [api_key, status, responses, run, cancel, *sim.values()]
        idle = {run: gr.update(interactive=True), cancel: gr.update(interactive=False)}

        def on_run(kind, hub_id, claude_id, key, culture_value, language_value, by, picked, nq, np_, plan_value,
                   tokens, beams, memory, seed_value, tlo, thi, plo, phi, request: gr.Request,
                   progress=gr.Progress(track_tqdm=True)):
            session = getattr(request, "session_hash", None) or "anonymous"
            stop = _ACTIVE[session] = threading.Event()
            # Clear the key from the page before anything else can fail; clear the last job's results.
            yield {api_key: gr.update(value=""), status: "Starting …", responses: space.responses_table([]),
                   run: gr.update(interactive=False), cancel: gr.update(interactive=True), **_result_values(sim, None)}
            try:
                spec = space.job_spec(
                    model_kind=kind, model_id=space.model_id_for(kind, hub_id, claude_id), culture=culture_value,
                    language=language_value, select_by=by, selection=picked or [], questions=nq, participants=np_,
                    plan=plan_value,
                    max_new_tokens=tokens, max_beams=beams, max_memory=memory, seed=seed_value,
                    temperature_range=(tlo, thi), top_p_range=(plo, phi),
                )
                update = None
                job_key = key if kind == "claude" else None
                for update in space.run_job(spec, runs_dir, limits, hardware, api_key=job_key, dataset_dir=dataset_dir,
                                            cancel=stop, slots=slots):
                    yield {status: _md(update.message), responses: update.table()}
                yield {status: _md(update.message) + " · scoring …", cancel: gr.update(interactive=False)}
                result = space.score_folder(update.run_dir, dataset_dir=dataset_dir)
                yield {status: _md(update.message) + " · writing the report …", **_result_values(sim, result)}
                files, note = space.report_files(update.run_dir, dataset_dir=dataset_dir)
                yield {status: f"{_md(update.message)} · done ({_md(space.user_message(ValueError(note), runs_dir))})",
                       sim["files"]: [str(p) for p in result.files + files], **idle}
            except Exception as exc:  # noqa: BLE001 - every failure stays on the page, key removed
                message = space.redact(space.user_message(exc, runs_dir, dataset_dir), key)
                log.warning("job failed: %s", message)
                gr.Warning(message)
                yield {status: f"⚠ **{_md(message)}**", **idle}
            finally:
                key = None  # noqa: F841 - drop the reference as soon as the job ends
                if _ACTIVE.get(session) is stop:
                    _ACTIVE.pop(session, None)

        slots = space.GenerationSlots(limits.concurrency_limit)
        run.click(
            on_run,
            [model_kind, hub_model, claude_model, api_key, culture, language, select_by, selection, n_questions,
             n_participants, plan, max_new_tokens, max_beams, max_memory, seed, t_low, t_high, p_low, p_high],
            sim_outputs,
            concurrency_id=GENERATION,
            concurrency_limit=limits.queue_max_size,  # jobs wait for the model in GenerationSlots, not here
            api_visibility="private",
        )

        def on_cancel(request: gr.Request):
            stop = _ACTIVE.get(getattr(request, "session_hash", None) or "anonymous")
            if stop is None:
                return gr.update()
            stop.set()
            return "Cancelling … (the batch being generated finishes first; its rows are kept)"

        cancel.click(on_cancel, None, status, queue=False)

        filters = [ex_culture, ex_language, ex_source, ex_topic, ex_dimension, ex_search]
        names = ["culture", "language", "source", "topic", "value dimension", "search"]

        def on_filter(*values):
            try:
                table = space.explore_table(frame, *values)
            except ValueError as exc:  # a value the page cannot offer; say so, keep the page working
                return (space.explore_table(frame).iloc[0:0], f"**{exc}**", gr.update(choices=[], value=None))
            ids = list(table["id"])
            return (table, explore_message(table, dict(zip(names, values))),
                    gr.update(choices=ids, value=ids[0] if ids else None))

        filter_outputs = [ex_table, ex_count, ex_question]
        for component in filters[1:]:
            event = component.submit if component is ex_search else component.change
            event(on_filter, filters, filter_outputs, queue=False)

        def on_ex_culture(culture_value: str, language_value: str):
            langs = explore_languages(frame, culture_value)
            return gr.update(choices=langs, value=language_value if language_value in langs else space.ALL)

        ex_culture.change(on_ex_culture, [ex_culture, ex_language], ex_language, queue=False).then(
            on_filter, filters, filter_outputs, queue=False)

        def on_row(table, evt: gr.SelectData):
            row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
            return table.iloc[row]["id"]

        ex_table.select(on_row, ex_table, ex_question, queue=False)

        def on_question(question_id: str | None):
            if not question_id:
                return "", gr.update(value=None, visible=False), gr.update(value=None, visible=False)
            try:
                header, table, figure = space.question_view(frame, question_id)
            except ValueError as exc:
                return f"**{exc}**", gr.update(value=None, visible=False), gr.update(value=None, visible=False)
            return header, gr.update(value=table, visible=True), gr.update(value=figure, visible=True)

        ex_question.change(on_question, ex_question, [ex_header, ex_options, ex_plot])

        def on_score(files, progress=gr.Progress(track_tqdm=True)):
            yield {score_status: "Checking and scoring the upload …", score_button: gr.update(interactive=False),
                   **_result_values(scored, None)}
            try:
                result = space.score_upload(files, runs_dir, dataset_dir=dataset_dir)
                yield {score_status: "Scored · writing the report …", **_result_values(scored, result)}
                report, note = space.report_files(result.run_dir, dataset_dir=dataset_dir)
                yield {scored["files"]: [str(p) for p in result.files + report], score_status: f"Done ({note})",
                       scored["summary"]: f"{result.summary}\n\n{note}", score_button: gr.update(interactive=True)}
            except Exception as exc:  # noqa: BLE001 - shown on the page
                message = space.user_message(exc, runs_dir, dataset_dir)
                log.warning("scoring an upload failed: %s", message)
                gr.Warning(message)
                yield {score_status: f"⚠ **{_md(message)}**", score_button: gr.update(interactive=True)}

        def on_board(score_value: str, where: str):
            rows = load_leaderboard()
            return (leaderboard_note(rows, score_value), display_frame(leaderboard_frame(rows, score_value, where)),
                    leaderboard_figure(rows, score_value, where))

        for control in (board_score, board_slice):
            control.change(on_board, [board_score, board_slice], [board_note, board_table, board_plot])

        score_button.click(on_score, upload, [score_status, score_button, *scored.values()], concurrency_id="scoring",
                           concurrency_limit=2)

    demo.queue(max_size=limits.queue_max_size, default_concurrency_limit=4)
    demo.culturesim_runs_dir = runs_dir  # type: ignore[attr-defined] - read by launch()
    return demo


def preload(model_id: str = space.EMBEDDED_MODEL) -> threading.Thread | None:
    """Load the embedded model at start-up so the first Run does not wait for it: in the
    background, except on ZeroGPU, where it must load on the main thread before ``launch``
    (``spaces`` intercepts CUDA on the thread that imported it and packs the model's tensors
    when the app launches, to move them onto each lent GPU)."""
    if space.on_zero_gpu():
        space.local_backend(model_id)
        return None
    thread = threading.Thread(target=space.local_backend, args=(model_id,), name="preload", daemon=True)
    thread.start()
    return thread


def launch(demo: gr.Blocks, host: str | None = None, port: int | None = None, **kwargs: Any) -> None:
    """Serve the app (blocking). Host and port default to Gradio's environment variables."""
    runs_dir = getattr(demo, "culturesim_runs_dir", None)
    demo.launch(
        server_name=host or os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=port or int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        allowed_paths=[str(runs_dir)] if runs_dir else None,
        run_history=False,  # run history would keep every input, a pasted key included
        footer_links=["gradio", "settings"],
        **kwargs,
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    preload()
    launch(build_app())
