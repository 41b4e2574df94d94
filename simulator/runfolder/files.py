"""The run folder on disk: one writer at a time, an atomic set-up, rows that survive anything.

Why each piece:

- **Lock.** Two ``simulate`` processes appending to one ``responses.jsonl`` write duplicate
  rows and leave a folder that can neither be resumed nor scored. ``RunLock`` holds an
  OS-level lock (``filelock``: ``flock`` on POSIX) on ``.culturesim.lock`` while a process
  writes; the kernel drops it when the process dies, however it dies, so a SIGKILLed run
  never blocks its own resume. The holder's PID, host and command go to ``.culturesim.writer``
  so a refused second writer can say who holds the folder.
- **Set-up is committed by config.json.** ``questions.jsonl`` and an empty ``responses.jsonl``
  are written first, ``config.json`` last (each atomically; ``prepare_run_folder``), so a folder
  without ``config.json`` only ever holds an unfinished set-up: ``setup_leftovers`` recognises it
  and the run starts afresh there (with or without ``--resume``) and says so.
- **Resume only the same run.** ``check_resumable`` compares the stored ``config.json`` with the
  new one (``config_differences``, apart from ``VOLATILE_KEYS``) before anything is written.
- **Rows.** ``RowWriter`` appends with ``os.write`` on an ``O_APPEND`` descriptor and fsyncs
  after each group, so a kill or a full disk leaves at most a cut-off last line, which
  ``read_rows(repair=True)`` drops on resume; every complete line is a row.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import logging
import os
import socket
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock, Timeout

from culturesim.simulator.runfolder.redact import recorded_command
from culturesim.simulator.runfolder.schema import (
    CONFIG_FILE,
    LOCK_FILE,
    QUESTIONS_FILE,
    RESPONSES_FILE,
    ROW_TYPES,
    WRITER_FILE,
    question_record,
)

__all__ = [
    "LOCK_NAMES",
    "VOLATILE_KEYS",
    "DiskError",
    "FolderBusy",
    "RowTail",
    "RowWriter",
    "RunLock",
    "check_out_dir",
    "check_resumable",
    "check_row",
    "config_differences",
    "holds_anything",
    "load_run_config",
    "lookup",
    "prepare_run_folder",
    "read_config",
    "read_questions",
    "read_rows",
    "remove_if_only_lock",
    "rows_text",
    "setup_leftovers",
    "write_atomic",
    "write_config",
    "write_questions",
    "write_rows",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

LOCK_NAMES = frozenset({LOCK_FILE, WRITER_FILE})
"""Files of the lock: they never make a folder count as holding a run."""
SETUP_NAMES = frozenset({QUESTIONS_FILE, RESPONSES_FILE, f"{QUESTIONS_FILE}.tmp", f"{CONFIG_FILE}.tmp",
                         f"{RESPONSES_FILE}.tmp"})
VOLATILE_KEYS = frozenset({"created_at", "command"})
"""Keys of config.json that may differ between a run and its resumption."""


# --------------------------------------------------------------------------------------
# Reading and writing
# --------------------------------------------------------------------------------------


def _disk_message(exc: OSError, path: Path, what: str) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return (f"no space left to write {path} ({what}; {os.strerror(exc.errno or 0)}): free space on that file "
                "system, then run the same command again with --resume")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write {path} ({os.strerror(exc.errno or 0)}): choose an --out folder you may write to"
    return f"cannot write {path} ({what}): {exc.strerror or exc}"


class DiskError(OSError):
    """Writing the run folder failed (full disk, permissions); the message names the file and the fix."""


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a fsynced ``.tmp`` beside it and a rename, so ``path``
    holds the old content or the new, never half; a failed write removes the ``.tmp``."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise DiskError(exc.errno, _disk_message(exc, path, "nothing of it was kept")) from exc


def rows_text(rows: Iterable[dict[str, Any]]) -> str:
    """Rows as the lines of ``responses.jsonl`` (one JSON object a line, UTF-8 as is)."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def write_rows(run_dir: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    """Replace ``responses.jsonl`` of ``run_dir`` with ``rows``, atomically (a resume dropping
    failed rows, a merge, a hand-made folder)."""
    write_atomic(Path(run_dir) / RESPONSES_FILE, rows_text(rows))


def write_config(run_dir: str | Path, config: dict[str, Any]) -> None:
    """Write ``config.json`` of ``run_dir``, atomically; written last, it commits a set-up."""
    write_atomic(Path(run_dir) / CONFIG_FILE, json.dumps(config, ensure_ascii=False, indent=2) + "\n")


def write_questions(run_dir: str | Path, questions: Iterable[Any]) -> None:
    """Write ``questions.jsonl`` of ``run_dir`` (one ``question_record`` a line), atomically."""
    write_atomic(Path(run_dir) / QUESTIONS_FILE,
                 "".join(json.dumps(question_record(q), ensure_ascii=False) + "\n" for q in questions))


def read_questions(run_dir: str | Path, make: Callable[[dict[str, Any]], T]) -> dict[str, T] | None:
    """The question snapshot of ``run_dir`` by id, each record turned into a question by ``make``
    (``Question.from_record``); None when ``questions.jsonl`` is missing or empty. A damaged file is
    a ValueError naming it and the fix."""
    path = Path(run_dir) / QUESTIONS_FILE
    if not (path.exists() and path.stat().st_size):
        return None
    try:
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return {r["id"]: make(r) for r in records}
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is damaged ({type(exc).__name__}: {exc}): restore it, or delete it to score "
                         "against the dataset the run's config.json names") from None


def check_row(row: Any, path: Path, number: int) -> None:
    """Raise ValueError unless ``row`` (line ``number`` of ``path``) has the shape of a row."""
    if not isinstance(row, dict):
        raise ValueError(f"{path}: line {number} is {type(row).__name__} JSON, not a row object; this is not a "
                         "culturesim responses file, or it was edited: restore it or run the simulation again")
    for key, kind in ROW_TYPES.items():
        if key not in row:
            raise ValueError(f"{path}: line {number} has no {key!r} (it has {', '.join(sorted(row)) or 'no keys'}); "
                             "this is not a culturesim responses row: restore the file or run the simulation again")
        if not isinstance(row[key], kind) or isinstance(row[key], bool):
            raise ValueError(f"{path}: line {number}: {key} is {row[key]!r}, not a {getattr(kind, '__name__', kind)}; "
                             "restore the file or run the simulation again")


def read_rows(path: str | Path, repair: bool = False) -> list[dict[str, Any]]:
    """Rows of a ``responses.jsonl``; a truncated last line (no newline) is ignored, and with
    ``repair`` cut off the file. A complete line that is not JSON, or not a row (``check_row``),
    raises ValueError naming the file and line."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    rows = []
    for number, line in enumerate(data[:end].split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: line {number} is not valid JSON ({exc}); the file is corrupted: restore it, "
                             "or delete that line and run the same command with --resume to ask it again") from exc
        check_row(row, path, number)
        rows.append(row)
    if end < len(data):
        log.warning("%s: dropping a truncated last line (%d bytes) left by an interrupted run", path, len(data) - end)
        if repair:
            with open(path, "r+b") as fh:
                fh.truncate(end)
                fh.flush()
                os.fsync(fh.fileno())
    return rows


def read_config(run_dir: str | Path) -> Any:
    """``config.json`` of ``run_dir`` as it is, shape unchecked (views that show whatever a config
    holds); OSError when unreadable, ValueError when not JSON. ``load_run_config`` checks it."""
    return json.loads((Path(run_dir) / CONFIG_FILE).read_text(encoding="utf-8"))


def load_run_config(run_dir: str | Path) -> dict[str, Any]:
    """A run folder's ``config.json``; a missing, truncated or wrong-shape file is a ValueError
    (FileNotFoundError when missing) naming the file and the fix."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} has no {CONFIG_FILE}: not a culturesim run folder (make one with "
                                "`culturesim simulate --out ...`)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}; truncated?): the run folder is damaged. Restore "
                         f"{CONFIG_FILE} from a copy, or run the simulation again into a new --out") from None
    if not isinstance(config, dict) or "question_ids" not in config:
        raise ValueError(f"{path} is not a culturesim run config (no question_ids); restore it or run the simulation "
                         "again into a new --out")
    return config


class RowTail:
    """The new complete rows of a growing ``responses.jsonl`` at each ``read`` (a live view of a run
    that may write from another thread or process; a line still being written waits for the next read)."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = Path(path), 0

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        return [json.loads(line) for line in data[:end].decode("utf-8").splitlines() if line.strip()]


class RowWriter:
    """Appends rows to ``responses.jsonl``: whole lines, fsynced per group; a failure names the fix."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.written = 0
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise DiskError(exc.errno, _disk_message(exc, self.path, "no row written")) from exc

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        data = rows_text(rows).encode("utf-8")
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            os.fsync(self._fd)
        except OSError as exc:
            raise DiskError(exc.errno, _disk_message(
                exc, self.path, f"the {self.written} rows written before are kept, a cut-off last line is dropped "
                                "on resume")) from exc
        self.written += len(rows)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "RowWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------
# The folder: where it may be, what it holds, who writes it
# --------------------------------------------------------------------------------------


def check_out_dir(out: Path) -> None:
    """Refuse an ``--out`` that cannot become a writable folder, before anything is loaded:
    a file at or above it, or a nearest existing folder this user may not write in."""
    out = Path(out)
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        where = "is" if probe == out else f"is below {probe}, which is"
        raise ValueError(f"--out {out} {where} a file, not a folder: choose another --out")
    target = probe if probe.exists() else out
    if not os.access(target, os.W_OK | os.X_OK):
        ro = ""
        try:
            if os.statvfs(target).f_flag & os.ST_RDONLY:
                ro = " (a read-only file system)"
        except OSError:
            pass
        raise ValueError(f"--out {out}: {target} is not writable by this user{ro}: choose an --out folder you may "
                         "write to")


def setup_leftovers(out: Path) -> list[str] | None:
    """The files of an interrupted set-up when ``out`` holds nothing else (no ``config.json``, an
    empty or absent ``responses.jsonl``, set-up and lock files only); None when it holds more."""
    out = Path(out)
    if not out.is_dir() or (out / CONFIG_FILE).exists():
        return None
    names = sorted(p.name for p in out.iterdir())
    if any(n not in SETUP_NAMES | LOCK_NAMES for n in names):
        return None
    responses = out / RESPONSES_FILE
    if responses.exists() and responses.stat().st_size > 0:
        return None
    return [n for n in names if n not in LOCK_NAMES]


def holds_anything(out: Path) -> bool:
    """Whether ``out`` holds files other than the lock's."""
    return out.is_dir() and any(p.name not in LOCK_NAMES for p in out.iterdir())


class FolderBusy(RuntimeError):
    """Another process holds the run folder's lock."""


_HELD: dict[str, list[Any]] = {}
"""Folders this process holds: path -> [FileLock, depth], so nested holders (the command line,
then ``simulate``) share one lock instead of blocking each other."""


class RunLock:
    """Hold ``out``'s writer lock for a ``with`` block; refuse at once if another process holds it.

    Creates ``out`` (and its parents) if needed. Re-entrant within a process.
    """

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.created = False

    def __enter__(self) -> "RunLock":
        key = str(self.out.resolve())
        if key in _HELD:
            _HELD[key][1] += 1
            return self
        if not self.out.exists():
            check_out_dir(self.out)
            try:
                self.out.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DiskError(exc.errno, _disk_message(exc, self.out, "the folder could not be made")) from exc
            self.created = True
        lock = FileLock(self.out / LOCK_FILE, timeout=0, fallback_to_soft=False, thread_local=False)
        try:
            lock.acquire()
        except Timeout:
            raise FolderBusy(f"--out {self.out} is being written by another culturesim process "
                             f"({self._holder()}); wait for it to finish, or stop it, then run again with --resume"
                             ) from None
        except OSError as exc:
            raise DiskError(exc.errno, _disk_message(exc, self.out / LOCK_FILE, "the folder could not be locked")) from exc
        _HELD[key] = [lock, 1]
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": recorded_command(program_name_only=True),
                "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        try:
            write_atomic(self.out / WRITER_FILE, json.dumps(info) + "\n")
        except OSError:
            pass  # the lock holds without the note; only the refusal message gets poorer
        return self

    def _holder(self) -> str:
        try:
            info = json.loads((self.out / WRITER_FILE).read_text(encoding="utf-8"))
            return f"PID {info['pid']} on {info['host']}, since {info['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "PID unknown"

    def __exit__(self, *exc: object) -> None:
        key = str(self.out.resolve())
        entry = _HELD.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del _HELD[key]
        try:
            (self.out / WRITER_FILE).unlink()
        except OSError:
            pass
        entry[0].release()


def remove_if_only_lock(out: Path, names: Iterable[str] = LOCK_NAMES) -> None:
    """Remove ``out`` when it holds nothing but lock files (a folder this run made and never used)."""
    try:
        if out.is_dir() and all(p.name in set(names) for p in out.iterdir()):
            for p in out.iterdir():
                p.unlink()
            out.rmdir()
    except OSError:
        pass


# --------------------------------------------------------------------------------------
# Starting or resuming a run
# --------------------------------------------------------------------------------------


def config_differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two configs (top-level ``VOLATILE_KEYS`` aside)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            if not prefix and key in VOLATILE_KEYS:
                continue
            out += config_differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [prefix.rstrip(".")]


def lookup(data: Any, dotted: str) -> Any:
    """The value at a dotted key (``backend.model``) of a config; None where a part is missing."""
    for part in dotted.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


# Dotted config keys that record where a thing was read from, not what the run computes: the
# embedded model loads from its converted folder or from the GGUF with bit-identical logits, so a
# run started one way resumes the other.
PROVENANCE_KEYS = frozenset({"backend.loaded_from"})


def check_resumable(out: str | Path, config: dict[str, Any], resume: bool, skip: Sequence[str] = ()) -> bool:
    """Whether ``out`` holds a run to resume (False: a new run). Raises ValueError when ``out``
    is not empty without ``resume``, or when the stored config differs from ``config`` (top-level
    keys in ``skip`` are not compared: a cheap check before the model is loaded). A folder left
    by a set-up that was killed or ran out of disk (no ``config.json``, no rows) counts as new."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder: choose another --out")
    if not holds_anything(out):
        return False
    leftovers = setup_leftovers(out)
    if leftovers is not None:
        log.warning("%s holds only an unfinished set-up (%s; no %s): starting the run afresh there",
                    out, ", ".join(leftovers), CONFIG_FILE)
        return False
    if not resume:
        raise ValueError(f"--out {out} is not empty. Pass --resume to continue that run, or choose a new folder.")
    config_path = out / CONFIG_FILE
    if not config_path.exists():
        raise ValueError(f"--resume: {out} has no {CONFIG_FILE}; it is not a culturesim run folder (choose another --out)")
    old = load_run_config(out)
    diff = [k for k in config_differences(old, config)
            if k.split(".")[0] not in set(skip) and k not in PROVENANCE_KEYS]
    if diff:
        details = "; ".join(f"{k}: {lookup(old, k)!r} -> {lookup(config, k)!r}" for k in diff[:8])
        raise ValueError(
            f"--resume: the run in {out} was made with a different configuration (differing keys: {', '.join(diff)}). "
            f"{details}. Use the same arguments, or a new --out folder."
        )
    return True


def prepare_run_folder(out: Path, config: dict[str, Any], resume: bool, questions: Sequence[Any]) -> list[dict[str, Any]]:
    """Create or check the run folder; return the rows already written (resume).

    The set-up writes ``questions.jsonl`` and an empty ``responses.jsonl`` first and commits with
    ``config.json`` last, so an interrupted set-up is recognised (``setup_leftovers``) and redone."""
    out = Path(out)
    if check_resumable(out, config, resume):
        return read_rows(out / RESPONSES_FILE, repair=True)
    out.mkdir(parents=True, exist_ok=True)
    for name in setup_leftovers(out) or ():
        (out / name).unlink()
    write_questions(out, questions)
    write_atomic(out / RESPONSES_FILE, "")
    write_config(out, config)
    return []
