"""The run folder, one contract: what ``culturesim simulate`` writes and every later step reads.

A run folder holds ``config.json`` (everything needed to reproduce the run, no secret; written
last), ``questions.jsonl`` (the questions asked), ``responses.jsonl`` (one row per participant x
question, append-only) and, while a process writes it, the lock's ``.culturesim.lock`` /
``.culturesim.writer``. Why one package: the runner, the estimators, the merger, the scorer,
the Space upload and the tests all write or read these files; here they find the names
(``schema``), the reading, writing, locking and resume checks (``files``), shard merging
(``merge``) and the masking of secrets in the recorded command (``redact``), so the format has one
owner and cannot drift between them.
"""

from culturesim.simulator.runfolder.files import (
    LOCK_NAMES,
    VOLATILE_KEYS,
    DiskError,
    FolderBusy,
    RowWriter,
    RunLock,
    check_out_dir,
    check_resumable,
    check_row,
    config_differences,
    holds_anything,
    load_run_config,
    lookup,
    prepare_run_folder,
    read_questions,
    read_rows,
    remove_if_only_lock,
    rows_text,
    setup_leftovers,
    write_atomic,
    write_config,
    write_questions,
    write_rows,
)
from culturesim.simulator.runfolder.merge import SHARD_KEYS, merge_runs
from culturesim.simulator.runfolder.redact import recorded_command, redact_argv, redact_secrets, remember_secret
from culturesim.simulator.runfolder.schema import (
    CONFIG_FILE,
    LOCK_FILE,
    PARSER_STATUSES,
    QUESTIONS_FILE,
    RESPONSES_FILE,
    ROW_TYPES,
    RUN_FORMAT,
    VERSION_SUFFIX,
    WRITER_FILE,
    Status,
    now,
    question_record,
    recorded_versions,
    response_row,
    version_fields,
)

__all__ = [
    "CONFIG_FILE",
    "LOCK_FILE",
    "LOCK_NAMES",
    "PARSER_STATUSES",
    "QUESTIONS_FILE",
    "RESPONSES_FILE",
    "ROW_TYPES",
    "RUN_FORMAT",
    "SHARD_KEYS",
    "VERSION_SUFFIX",
    "VOLATILE_KEYS",
    "WRITER_FILE",
    "DiskError",
    "FolderBusy",
    "RowWriter",
    "RunLock",
    "Status",
    "check_out_dir",
    "check_resumable",
    "check_row",
    "config_differences",
    "holds_anything",
    "load_run_config",
    "lookup",
    "merge_runs",
    "now",
    "prepare_run_folder",
    "question_record",
    "read_questions",
    "read_rows",
    "recorded_command",
    "recorded_versions",
    "redact_argv",
    "redact_secrets",
    "remember_secret",
    "remove_if_only_lock",
    "response_row",
    "rows_text",
    "setup_leftovers",
    "version_fields",
    "write_atomic",
    "write_config",
    "write_questions",
    "write_rows",
]
