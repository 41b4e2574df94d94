"""The culturesim Gradio Space: what it does, as plain functions (no Gradio outside ``app.py``).

Why: ``app.py`` only lays out tabs and wires events (the gradio demos' habit); everything that
can be wrong -- which questions a filter selects, whether a job is too big for the hardware,
whether an uploaded file is a real ``responses.jsonl``, what the tables and figures show --
returns DataFrames, figures or dataclasses, raises ``ValueError`` with the offending value and
the fix, and is tested without a browser. The code lives in one module per concern (below);
this package's ``__init__`` gathers their public names so the app and the tests have one import
(``from culturesim import space``). ``device`` comes first: it imports ``spaces`` before anything
may load torch (ZeroGPU).

- ``culturesim.space.device``: the GPU-bound call (``@spaces.GPU`` on ZeroGPU, a plain call elsewhere)
- ``culturesim.space.common``: shared constants and figure fonts
- ``culturesim.space.limits``: hardware detection and the caps a job must fit
- ``culturesim.space.explore``: the Explore tab
- ``culturesim.space.spec``: what to simulate (``JobSpec``)
- ``culturesim.space.models``: the local model and Claude backends, key redaction
- ``culturesim.space.jobs``: running a job, rows as they arrive
- ``culturesim.space.results``: scores, figures and the report of a run
- ``culturesim.space.upload``: the Score tab's uploads
"""

from __future__ import annotations

from culturesim.space.device import on_zero_gpu
from culturesim.space.common import ALL, CLAUDE_MODELS, EMBEDDED_HUB_ID, EMBEDDED_MODEL, MODEL_KINDS, SELECT_BY, model_kinds
from culturesim.space.limits import (Hardware, SpaceLimits, check_job, check_model_size, detect_hardware, model_parameter_count,
                          suggested_models, torch_build_warning)
from culturesim.space.explore import dataset_frame, explore_choices, explore_table, human_distribution_figure, question_view
from culturesim.space.spec import DEFAULT_JOB, JobSpec, job_spec, language_choices, model_id_for, plan_choices, select_questions, selection_choices
from culturesim.space.models import JobCancelled, JobFailed, JobTimeout, is_loaded, local_backend, redact
from culturesim.space.jobs import (GenerationSlots, JobUpdate, RESPONSE_COLUMNS, default_runs_dir, responses_table, run_job,
                        user_message)
from culturesim.space.results import (FIGURE_TITLES, JobResult, SCORE_COLUMNS, report_files, result_figures, run_label, run_notes,
                           score_folder, scores_table)
from culturesim.space.upload import prepare_uploaded_run, read_responses_upload, score_upload

__all__ = [
    "ALL",
    "CLAUDE_MODELS",
    "DEFAULT_JOB",
    "EMBEDDED_HUB_ID",
    "EMBEDDED_MODEL",
    "FIGURE_TITLES",
    "Hardware",
    "GenerationSlots",
    "JobCancelled",
    "JobFailed",
    "JobResult",
    "JobSpec",
    "JobTimeout",
    "JobUpdate",
    "MODEL_KINDS",
    "RESPONSE_COLUMNS",
    "SCORE_COLUMNS",
    "SELECT_BY",
    "SpaceLimits",
    "check_job",
    "check_model_size",
    "dataset_frame",
    "default_runs_dir",
    "detect_hardware",
    "explore_choices",
    "explore_table",
    "human_distribution_figure",
    "is_loaded",
    "job_spec",
    "language_choices",
    "local_backend",
    "model_id_for",
    "model_kinds",
    "model_parameter_count",
    "on_zero_gpu",
    "plan_choices",
    "prepare_uploaded_run",
    "question_view",
    "read_responses_upload",
    "redact",
    "report_files",
    "responses_table",
    "result_figures",
    "run_job",
    "run_label",
    "run_notes",
    "score_folder",
    "score_upload",
    "scores_table",
    "select_questions",
    "selection_choices",
    "suggested_models",
    "torch_build_warning",
    "user_message",
]
