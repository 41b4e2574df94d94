"""Validating and converting the inputs: settings, references, answers or probabilities, ids, tags, groups.

Everything a caller can get wrong is checked here, once, with a ValueError that names the
question (and its id), the bad value and the fix; what comes out is the zero-padded ``Data``
record the other parts compute on. The common case (every question the same number of plain
int answers) takes a vectorised path; mixed and multiple choice answers a slower exact one.
"""

from __future__ import annotations

import itertools
import math
import operator
from typing import Any

import numpy as np

from .bootstrap import PARTICIPANT_BOOTSTRAP_DEFAULT
from .divergences import ZERO_POLICIES
from .schema import (
    DEMOGRAPHIC_GROUPS,
    SLOT_INDEX,
    SLOTS,
    SUM_TOLERANCE,
    VALUE_DIMENSIONS,
    Answers,
    Data,
    is_int,
    where,
)

__all__ = ["PREPARE_OPTIONAL", "check_settings", "length", "prepare", "add_design"]

_BOOL_TYPES = {bool, np.bool_}


def check_settings(zero_policy, smoothing, bootstrap_samples, confidence, seed, participant_bootstrap_samples) -> dict:
    if zero_policy not in ZERO_POLICIES:
        raise ValueError(f"zero_policy={zero_policy!r}; choose one of {', '.join(repr(p) for p in ZERO_POLICIES)}")
    if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float, np.floating, np.integer)):
        raise ValueError(f"smoothing={smoothing!r} must be a positive number such as 1e-3")
    if zero_policy == "smoothing":
        if not (math.isfinite(float(smoothing)) and float(smoothing) > 0):
            raise ValueError(
                f"smoothing={smoothing!r} must be a positive finite number such as 1e-3; "
                "for unsmoothed KL use zero_policy='raise' or 'paper'"
            )
    for name, value in (
        ("bootstrap_samples", bootstrap_samples),
        ("participant_bootstrap_samples", participant_bootstrap_samples),
    ):
        if value is None and name == "participant_bootstrap_samples":
            continue
        if not is_int(value) or value < 0:
            raise ValueError(f"{name}={value!r} must be an int >= 0 (0 switches the bootstrap off)")
    number = isinstance(confidence, (int, float, np.floating)) and not isinstance(confidence, bool)
    if not number or not 0 < float(confidence) < 1:
        raise ValueError(f"confidence={confidence!r} must be a number strictly between 0 and 1, e.g. 0.95")
    if seed is not None and (not is_int(seed) or seed < 0):
        raise ValueError(f"seed={seed!r} must be an int >= 0 (or None for a fresh random seed)")
    return {
        "zero_policy": zero_policy,
        "smoothing": float(smoothing),
        "bootstrap_samples": int(bootstrap_samples),
        # the jackknife gives the bias-corrected KL and worth-N, point estimates: on by default
        "participant_bootstrap_samples": int(
            PARTICIPANT_BOOTSTRAP_DEFAULT if participant_bootstrap_samples is None else participant_bootstrap_samples
        ),
        "confidence": float(confidence),
        "seed": None if seed is None else int(seed),
    }


def _lengths(rows: Any, what: str, ids) -> np.ndarray:
    """len() of every per-question entry; a ValueError naming the first entry that is not a list."""
    try:
        if not {str, bytes, dict} & set(map(type, rows)):
            return np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    except TypeError:
        pass
    for i, row in enumerate(rows):
        if isinstance(row, (str, bytes, dict)) or not hasattr(row, "__len__"):
            raise ValueError(f"{where(i, ids)}: {what} must be a list, got {row!r}")
    raise AssertionError("unreachable: every entry has a length")


def length(value: Any, name: str) -> int:
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__"):
        raise ValueError(f"{name} must be a list with one entry per question, got {type(value).__name__}")
    return len(value)


PREPARE_OPTIONAL = ("ordinal", "value_dimensions", "demographics", "question_ids", "num_options")


def prepare(
    predictions=None, probabilities=None, references=None, ordinal=None, value_dimensions=None, demographics=None,
    question_ids=None, num_options=None,
) -> Data:
    if references is None:
        raise ValueError("references is required: one human distribution (list of floats) per question")
    if (predictions is None) == (probabilities is None):
        raise ValueError(
            "give exactly one of predictions (the participants' answers, option indices) or "
            "probabilities (a probability vector per question)"
        )
    n = length(references, "references")
    if n == 0:
        raise ValueError("references is empty: there are no questions to score")
    for name, value in (
        ("predictions", predictions),
        ("probabilities", probabilities),
        ("ordinal", ordinal),
        ("value_dimensions", value_dimensions),
        ("demographics", demographics),
        ("question_ids", question_ids),
        ("num_options", num_options),
    ):
        if value is not None and length(value, name) != n:
            raise ValueError(
                f"{name} has {length(value, name)} entries but references has {n}; "
                "give one entry per question, in the same order"
            )

    ids = None
    if question_ids is not None:
        ids = []
        seen: dict[str, int] = {}
        for i, qid in enumerate(question_ids):
            if not isinstance(qid, str):
                raise ValueError(f"question {i}: question_ids[{i}]={qid!r} must be a string")
            if qid in seen:
                raise ValueError(
                    f"question {i} (id {qid!r}): question id {qid!r} is also question {seen[qid]}; ids must be "
                    "unique (score each question once, or give repeated askings distinct ids)"
                )
            seen[qid] = i
            ids.append(qid)

    ks = _lengths(references, "the human distribution (a list of floats)", ids)
    if (ks < 2).any():
        i = int(np.flatnonzero(ks < 2)[0])
        raise ValueError(
            f"{where(i, ids)}: the human distribution {list(references[i])!r} has {ks[i]} option(s); "
            "a question needs at least 2 options"
        )
    if num_options is not None:
        for i, k in enumerate(num_options):
            if not is_int(k) or int(k) != ks[i]:
                raise ValueError(
                    f"{where(i, ids)}: num_options={k!r} but the human distribution has {ks[i]} options; "
                    "they must agree (check that the answers were mapped onto the same option list)"
                )

    kmax = int(ks.max())
    groups = {int(k): np.flatnonzero(ks == k) for k in np.flatnonzero(np.bincount(ks))}
    human = _distributions(references, ks, groups, kmax, "the human distribution", ids)

    answers = None
    if probabilities is not None:
        lengths = _lengths(probabilities, "the model probabilities (a list of floats)", ids)
        if (lengths != ks).any():
            i = int(np.flatnonzero(lengths != ks)[0])
            raise ValueError(
                f"{where(i, ids)}: the model probabilities {list(probabilities[i])!r} have {lengths[i]} entries "
                f"but the human distribution has {ks[i]} options"
            )
        model = _distributions(probabilities, ks, groups, kmax, "the model probabilities", ids)
        model_input = "probabilities"
    else:
        answers = _ingest_answers(predictions, ks, ids)
        counts = np.bincount(
            answers.question * kmax + answers.option, weights=answers.weight, minlength=n * kmax
        ).reshape(n, kmax)
        model = counts / answers.lengths[:, None]
        model_input = "answers"

    ordinal_arr = _ordinal(ordinal, n, ids)
    dims, dim_matrix = _dimensions(value_dimensions, n, ids)
    demo, demo_present, has_demo, demo_n = _demographics(demographics, ks, kmax, ids)
    return Data(
        n=n,
        ks=ks,
        human=human,
        model=model,
        ordinal=ordinal_arr,
        dims=dims,
        dim_matrix=dim_matrix,
        demo=demo,
        demo_present=demo_present,
        has_demo=has_demo,
        demo_n=demo_n,
        ids=ids,
        model_input=model_input,
        answers=answers,
        groups=groups,
    )


def _distributions(rows: Any, ks: np.ndarray, groups: dict[int, np.ndarray], kmax: int, what: str, ids) -> np.ndarray:
    """Validate per-question distributions and return them zero padded to (n, kmax), renormalised."""
    out = np.zeros((len(ks), kmax))
    values = None
    if isinstance(rows, (list, tuple)) and not {str, bytes, dict} & set(map(type, rows)):
        try:  # every share in one pass; row by row below only to name a bad row
            values = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.float64, count=int(ks.sum()))
            offsets = np.cumsum(ks) - ks
        except (TypeError, ValueError):
            values = None
    for k, idx in groups.items():
        if values is not None:
            block = values[offsets[idx][:, None] + np.arange(k)[None, :]]
        else:
            block = _float_rows([rows[i] for i in idx], idx, what, ids)
        _check_distribution_rows(block, idx, what, ids, lambda r: where(int(idx[r]), ids))
        out[idx, :k] = block / block.sum(axis=1, keepdims=True)
    return out


def _float_rows(rows: list, idx: np.ndarray, what: str, ids) -> np.ndarray:
    try:
        return np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):
        for i, row in zip(idx, rows):
            try:
                np.asarray(row, dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"{where(int(i), ids)}: {what} must be a list of numbers, got {row!r}") from None
        raise ValueError(f"{what}: rows of one option count could not be read as numbers") from None


def _check_distribution_rows(block: np.ndarray, idx, what: str, ids, name_row) -> None:
    """Raise ValueError naming the first row that is not a distribution (NaN, negative, sum != 1)."""
    bad = ~np.isfinite(block).all(axis=1)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name_row(r)}: {what} {block[r].tolist()} contains NaN or infinity")
    bad = (block < 0).any(axis=1)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        value = float(block[r][block[r] < 0][0])
        raise ValueError(f"{name_row(r)}: {what} {block[r].tolist()} has a negative share {value!r}")
    sums = block.sum(axis=1)
    bad = np.abs(sums - 1.0) > SUM_TOLERANCE
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name_row(r)}: {what} {block[r].tolist()} sums to {sums[r]:.10g}, not 1 "
            f"(tolerance {SUM_TOLERANCE:g}); divide it by its sum before scoring"
        )


def _ingest_answers(predictions: Any, ks: np.ndarray, ids) -> Answers:
    n = len(ks)
    multi_distinct: dict[int, int] = {}
    weight = None
    if isinstance(predictions, np.ndarray) and predictions.ndim == 2 and predictions.dtype.kind in "iu":
        per = predictions.shape[1]
        if per == 0:
            raise ValueError(f"{where(0, ids)}: no answers (the answer matrix has 0 columns)")
        lengths = np.full(n, per, dtype=np.int64)
        option = predictions.astype(np.int64).ravel()
        question = np.repeat(np.arange(n, dtype=np.int64), per)
        participant = np.tile(np.arange(per, dtype=np.int64), n)
    elif (matrix := _answer_matrix(predictions)) is not None:
        return _ingest_answers(matrix, ks, ids)
    else:
        lengths = _lengths(predictions, "the answers (one entry per participant)", ids)
        if (lengths == 0).any():
            i = int(np.flatnonzero(lengths == 0)[0])
            raise ValueError(f"{where(i, ids)}: the answer list is empty; every question needs at least one answer")
        flat = list(itertools.chain.from_iterable(predictions))
        try:
            arr = np.asarray(flat)
        except (TypeError, ValueError):  # ragged: some answers are lists (multiple choice)
            arr = None
        question = np.repeat(np.arange(n, dtype=np.int64), lengths)
        if arr is not None and arr.ndim == 1 and arr.dtype.kind in "iu" and not _BOOL_TYPES & set(map(type, flat)):
            option = arr.astype(np.int64)
            starts = np.cumsum(lengths) - lengths
            participant = np.arange(len(option), dtype=np.int64) - np.repeat(starts, lengths)
        elif arr is not None and arr.ndim == 1 and arr.dtype.kind in "fbiu":
            pos = next(p for p, a in enumerate(flat) if not is_int(a))
            _raise_bad_answer(flat, pos, question, lengths, ids)
        else:
            question, participant, option, weight = _ingest_mixed(predictions, ks, ids, multi_distinct)

    bad = (option < 0) | (option >= ks[question])
    if bad.any():
        e = int(np.flatnonzero(bad)[0])
        i, k = int(question[e]), int(ks[question[e]])
        raise ValueError(
            f"{where(i, ids)}: participant {int(participant[e])} answered option {int(option[e])}, outside "
            f"0..{k - 1} (the human distribution has {k} options); answers are 0-based option indices"
        )
    kmax = int(ks.max())
    counts = np.bincount(question * kmax + option, minlength=n * kmax).reshape(n, kmax)
    distinct = (counts > 0).sum(axis=1)
    for i, d in multi_distinct.items():
        distinct[i] = d
    return Answers(question, participant, option, weight, lengths, distinct)


def _answer_matrix(predictions: Any) -> np.ndarray | None:
    """The answers as a (questions, participants) int array when every question has the same
    number of plain int answers (the common case), else None."""
    if isinstance(predictions, np.ndarray) or not isinstance(predictions, (list, tuple)) or not predictions:
        return None
    first = predictions[0]
    if not isinstance(first, (list, tuple)) or not first or not is_int(first[0]):
        return None
    try:
        matrix = np.asarray(predictions)
    except (TypeError, ValueError):  # ragged, or lists inside (multiple choice)
        return None
    if matrix.ndim != 2 or matrix.dtype.kind not in "iu" or _BOOL_TYPES & set(map(type, itertools.chain(*predictions))):
        return None
    return matrix


def _raise_bad_answer(flat: list, pos: int, question: np.ndarray, lengths: np.ndarray, ids) -> None:
    i = int(question[pos])
    j = pos - int(np.sum(lengths[:i]))
    raise ValueError(
        f"{where(i, ids)}: participant {j} answered {flat[pos]!r}; an answer must be an int option index "
        "(0-based) or a list of them. For probability vectors pass probabilities= (or load the "
        "'probabilities' configuration of the evaluate module)"
    )


def _ingest_mixed(predictions, ks: np.ndarray, ids, multi_distinct: dict[int, int]):
    """Slow path: answers that mix ints and lists of ints (multiple choice)."""
    qs: list[int] = []
    ps: list[int] = []
    os_: list[int] = []
    ws: list[float] = []
    for i, answers in enumerate(predictions):
        responses = set()
        has_list = False
        for j, a in enumerate(answers):
            if is_int(a) and not 0 <= a < ks[i]:
                raise ValueError(
                    f"{where(i, ids)}: participant {j} answered option {a}, outside 0..{ks[i] - 1} (the human "
                    f"distribution has {ks[i]} options); answers are 0-based option indices"
                )
            if is_int(a):
                qs.append(i)
                ps.append(j)
                os_.append(int(a))
                ws.append(1.0)
                responses.add((int(a),))
                continue
            if isinstance(a, (str, bytes, dict)) or not hasattr(a, "__len__"):
                raise ValueError(
                    f"{where(i, ids)}: participant {j} answered {a!r}; an answer must be an int option index "
                    "(0-based) or a list of them (multiple choice)"
                )
            chosen = list(a)
            if not chosen:
                raise ValueError(
                    f"{where(i, ids)}: participant {j} gave an empty multiple-choice answer []; "
                    "drop the participant's answer or give at least one option"
                )
            for o in chosen:
                if not is_int(o):
                    raise ValueError(
                        f"{where(i, ids)}: participant {j} answered {chosen!r}; {o!r} is not an int option index"
                    )
                if not 0 <= o < ks[i]:
                    raise ValueError(
                        f"{where(i, ids)}: participant {j} answered option {o}, outside 0..{ks[i] - 1} (the human "
                        f"distribution has {ks[i]} options); answers are 0-based option indices"
                    )
            if len(set(int(o) for o in chosen)) != len(chosen):
                raise ValueError(
                    f"{where(i, ids)}: participant {j} answered {chosen!r}, which names an option twice"
                )
            has_list = True
            for o in chosen:
                qs.append(i)
                ps.append(j)
                os_.append(int(o))
                ws.append(1.0 / len(chosen))
            responses.add(tuple(sorted(int(o) for o in chosen)))
        if has_list:
            multi_distinct[i] = len(responses)
    return (
        np.asarray(qs, dtype=np.int64),
        np.asarray(ps, dtype=np.int64),
        np.asarray(os_, dtype=np.int64),
        np.asarray(ws, dtype=np.float64),
    )


def _ordinal(ordinal: Any, n: int, ids) -> np.ndarray:
    if ordinal is None:
        return np.zeros(n, dtype=bool)
    try:
        arr = np.asarray(ordinal)
        if arr.dtype == bool and arr.shape == (n,):
            return arr.copy()
    except (TypeError, ValueError):
        pass
    out = np.zeros(n, dtype=bool)
    for i, flag in enumerate(ordinal):
        if isinstance(flag, (bool, np.bool_)) or (is_int(flag) and flag in (0, 1)):
            out[i] = bool(flag)
        else:
            raise ValueError(f"{where(i, ids)}: ordinal={flag!r} must be True or False")
    return out


def _dimensions(value_dimensions: Any, n: int, ids) -> tuple[list[str], np.ndarray]:
    full = np.zeros((n, len(VALUE_DIMENSIONS)), dtype=bool)
    if value_dimensions is not None:
        index = {d: c for c, d in enumerate(VALUE_DIMENSIONS)}
        combos: dict[tuple, int] = {}  # each distinct tag list is validated once
        rows: list[np.ndarray] = []
        which = np.empty(n, dtype=np.int64)
        for i, tags in enumerate(value_dimensions):
            key = tuple(tags) if isinstance(tags, list) else None
            c = combos.get(key) if key is not None else None
            if c is None:
                row = np.zeros(len(VALUE_DIMENSIONS), dtype=bool)
                row[_dimension_columns(tags, index, i, ids)] = True
                c = len(rows)
                rows.append(row)
                if key is not None:
                    combos[key] = c
            which[i] = c
        full = np.array(rows)[which]
    present = full.any(axis=0)
    return [d for d, p in zip(VALUE_DIMENSIONS, present) if p], full[:, present]


def _dimension_columns(tags: Any, index: dict[str, int], i: int, ids) -> list[int]:
    if tags is None:
        return []
    if isinstance(tags, (str, bytes)) or not hasattr(tags, "__iter__"):
        raise ValueError(f"{where(i, ids)}: value_dimensions={tags!r} must be a list of tags, e.g. ['EVI']")
    cols = []
    for tag in tags:
        if tag not in index:
            raise ValueError(
                f"{where(i, ids)}: unknown value dimension {tag!r}; valid tags: {' '.join(VALUE_DIMENSIONS)}"
            )
        cols.append(index[tag])
    return cols


def _demographics(demographics: Any, ks: np.ndarray, kmax: int, ids) -> tuple[Any, Any, np.ndarray]:
    """(distributions (n, slots, kmax), presence (n, slots), has any) of the demographic groups."""
    n = len(ks)
    has = np.zeros(n, dtype=bool)
    if demographics is None:
        return None, None, has, None
    parsed = _demographic_entries(demographics)
    if parsed is not None:
        qs, slots, dists, sizes = parsed
    else:
        qs, slots, dists, sizes = [], [], [], []
    for i, groups in enumerate(demographics if parsed is None else ()):
        if not isinstance(groups, (list, tuple)):
            if groups is None:
                continue
            if isinstance(groups, (str, bytes, dict)) or not hasattr(groups, "__iter__"):
                raise ValueError(
                    f"{where(i, ids)}: demographics must be a list of {{group_type, group, distribution}} "
                    f"dicts (or []), got {groups!r}"
                )
            groups = list(groups)
        if not groups:
            continue
        try:
            slots.extend([SLOT_INDEX[(entry["group_type"], entry["group"])] for entry in groups])
            dists.extend([entry["distribution"] for entry in groups])
            sizes.extend(map(_get_n, groups))
        except (KeyError, TypeError, IndexError):
            for entry in groups:
                _check_demographic_entry(i, entry, ids)
            raise
        qs.extend([i] * (len(dists) - len(qs)))
    demo = np.zeros((n, len(SLOTS), kmax))
    present = np.zeros((n, len(SLOTS)), dtype=bool)
    demo_n = np.full((n, len(SLOTS)), np.nan)
    if not len(qs):
        return demo, present, has, demo_n
    q = np.asarray(qs, dtype=np.int64)
    slot = np.asarray(slots, dtype=np.int64)
    key = q * len(SLOTS) + slot
    seen = np.bincount(key)
    if seen.max() > 1:
        first = np.flatnonzero(seen > 1)[0]
        i, (family, group) = int(first // len(SLOTS)), SLOTS[int(first % len(SLOTS))]
        raise ValueError(
            f"{where(i, ids)}: demographic group {family}/{group} appears twice; keep one entry per group"
        )
    try:
        lengths = np.fromiter(map(len, dists), dtype=np.int64, count=len(dists))
    except TypeError:
        lengths = np.array([len(x) if hasattr(x, "__len__") else -1 for x in dists])
    if {str, bytes, dict} & set(map(type, dists)):
        lengths[[isinstance(x, (str, bytes, dict)) for x in dists]] = -1
    bad = lengths != ks[q]
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        family, group = SLOTS[int(slot[r])]
        raise ValueError(
            f"{where(int(q[r]), ids)}: the {family}/{group} distribution {dists[r]!r} must be a list of "
            f"{ks[q[r]]} floats, one per option"
        )
    has[q] = True
    kq = ks[q]
    try:  # every share in one pass (row by row below only to name a bad entry)
        values = np.fromiter(itertools.chain.from_iterable(dists), dtype=np.float64, count=int(lengths.sum()))
        offsets = np.cumsum(lengths) - lengths
    except (TypeError, ValueError):
        values = None
    for k in np.flatnonzero(np.bincount(kq)):
        sel = np.flatnonzero(kq == k)
        if values is not None:
            block = values[offsets[sel][:, None] + np.arange(k)[None, :]]
        else:
            block = _float_rows([dists[s] for s in sel], q[sel], "a demographic distribution", ids)

        def name_row(r: int, sel=sel) -> str:
            family, group = SLOTS[slot[sel[r]]]
            return f"{where(int(q[sel[r]]), ids)}, {family}/{group}"

        _check_distribution_rows(block, q[sel], "the demographic distribution", ids, name_row)
        demo[q[sel], slot[sel], :k] = block / block.sum(axis=1, keepdims=True)
    present[q, slot] = True
    types = set(map(type, sizes))
    bad = None
    if not types <= {int, type(None)}:  # the slow path names the first n that is not an int
        bad = next((r for r, x in enumerate(sizes) if x is not None and not is_int(x)), None)
    if bad is None:
        values = np.fromiter((np.nan if x is None else x for x in sizes), dtype=np.float64, count=len(sizes))
        negative = np.flatnonzero(values < 0)
        bad = int(negative[0]) if len(negative) else None
        demo_n[q, slot] = values
    if bad is not None:
        family, group = SLOTS[int(slot[bad])]
        raise ValueError(f"{where(int(q[bad]), ids)}: the {family}/{group} group's n={sizes[bad]!r} must be an int "
                         ">= 0 (respondents behind that distribution) or left out")
    return demo, present, has, demo_n


_get_n = operator.methodcaller("get", "n")
_get_slot_key = operator.itemgetter("group_type", "group")
_get_distribution = operator.itemgetter("distribution")


def _demographic_entries(demographics: Any) -> tuple[list, list, list, list] | None:
    """The common case of ``demographics`` (every entry a list or tuple of well-formed dicts of
    known groups, or None) read entry by entry in C-level loops (map, chain) instead of a Python
    loop per question: (question of each entry, slot, distribution, n). None for anything else,
    which the per-question loop of _demographics then reads and names."""
    if not set(map(type, demographics)) <= {list, tuple, type(None)}:
        return None
    counts = [0 if groups is None else len(groups) for groups in demographics]
    flat = list(itertools.chain.from_iterable(groups for groups in demographics if groups))
    try:
        slots = list(map(SLOT_INDEX.__getitem__, map(_get_slot_key, flat)))
        dists = list(map(_get_distribution, flat))
        sizes = list(map(_get_n, flat))
    except (KeyError, TypeError, IndexError, AttributeError):
        return None
    return np.repeat(np.arange(len(counts), dtype=np.int64), counts), slots, dists, sizes


def _check_demographic_entry(i: int, entry: Any, ids) -> None:
    if not isinstance(entry, dict) or not {"group_type", "group", "distribution"} <= set(entry):
        raise ValueError(
            f"{where(i, ids)}: demographic entry {entry!r} needs the keys group_type, group and distribution"
        )
    try:
        known = (entry["group_type"], entry["group"]) in SLOT_INDEX
    except TypeError:  # unhashable group names
        known = False
    if not known:
        valid = "; ".join(f"{f}: {', '.join(g)}" for f, g in DEMOGRAPHIC_GROUPS.items())
        raise ValueError(
            f"{where(i, ids)}: unknown demographic group {entry['group_type']!r}/{entry['group']!r}; valid: {valid}"
        )


def add_design(data: Data, battery: Any, human_n_effective: Any) -> None:
    """Set ``data.cluster`` (the battery of each question, as integers; a question without one,
    None or an empty string, is its own cluster) and ``data.human_n_eff`` (the effective number
    of respondents behind each human distribution, n / design effect; NaN where not given, and
    then that question's reference is treated as exact). ValueError names the bad entry."""
    n, ids = data.n, data.ids
    for name, value in (("battery", battery), ("human_n_effective", human_n_effective)):
        if value is not None and length(value, name) != n:
            raise ValueError(f"{name} has {length(value, name)} entries but references has {n}; "
                             "give one entry per question, in the same order")
    cluster = np.arange(n, dtype=np.int64)
    if battery is not None:
        names: dict[str, int] = {}
        for i, b in enumerate(battery):
            if b is None or b == "":
                continue
            if not isinstance(b, str):
                raise ValueError(f"{where(i, ids)}: battery={b!r} must be a string naming the block of questions "
                                 "asked together, or None")
            cluster[i] = names.setdefault(b, i)
        cluster = np.unique(cluster, return_inverse=True)[1].astype(np.int64)
    data.cluster = cluster
    n_eff = np.full(n, np.nan)
    if human_n_effective is not None and set(map(type, human_n_effective)) <= {int, float, type(None)}:
        # the common case in one pass; the loop below names a bad entry
        values = np.fromiter((math.nan if v is None else v for v in human_n_effective), dtype=np.float64, count=n)
        given = np.array([v is not None for v in human_n_effective], dtype=bool)
        if (np.isfinite(values[given]) & (values[given] >= 1)).all():
            data.human_n_eff = values
            return
    if human_n_effective is not None:
        for i, v in enumerate(human_n_effective):
            if v is None:
                continue
            number = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
            if not number or not math.isfinite(float(v)) or float(v) < 1:
                raise ValueError(f"{where(i, ids)}: human_n_effective={v!r} must be a number >= 1 (respondents behind "
                                 "the human distribution divided by the design effect of the weights) or None")
            n_eff[i] = float(v)
    data.human_n_eff = n_eff
