"""The Space on CPU, dedicated-GPU and ZeroGPU hardware, and what its pages explain, without a browser.

ZeroGPU itself cannot run here (the ``spaces`` package emulates CUDA only over a CUDA build of
torch, and there is no GPU); what can be checked is that the real ``spaces`` decorator is a
no-op off ZeroGPU, that the requirements and front matter say what the docs ask for, and the
pure decisions (dtype, model list, limits, turns on the model) that differ by hardware.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import yaml

from culturesim import space
from culturesim.space import device, publish

REPO = Path(__file__).resolve().parent.parent


def _requirements(name: str) -> list[str]:
    return [line.strip() for line in (REPO / "space" / name).read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def test_spaces_gpu_decorator_is_a_no_op_off_zero_gpu() -> None:
    import spaces

    def task(x: int) -> int:
        return x + 1

    assert not device.on_zero_gpu()
    assert spaces.GPU(duration=30)(task) is task and spaces.GPU(task) is task  # the very same function
    assert device.spaces is spaces
    # the decorated call in space.device is the plain function here: no ZeroGPU wrapper
    assert device.simulate_local.__module__ == "culturesim.space.device" and not hasattr(device.simulate_local, "zerogpu")
    assert device.gpu_seconds(lease_s=5000) == device.ZERO_GPU_MAX_S and device.gpu_seconds(lease_s=3) == 10


def test_requirements_name_spaces_and_keep_cuda_off_a_cpu_space() -> None:
    cpu, gpu = _requirements("requirements.txt"), _requirements("requirements-gpu.txt")
    for reqs in (cpu, gpu):
        assert any(r.startswith("spaces") for r in reqs)
        assert not any(r.startswith("gradio") for r in reqs)  # sdk_version decides gradio
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in cpu and "torch==2.13.0+cpu" in cpu
    assert "torch==2.13.0" in gpu and not any("whl/cpu" in r or "+cpu" in r for r in gpu)
    assert not any(r.startswith("bitsandbytes") for r in cpu)  # 4-bit loading is GPU-only


def test_front_matter_preloads_the_default_model_and_publish_picks_the_hardware(tmp_path: Path) -> None:
    text = (REPO / "space" / "README.md").read_text(encoding="utf-8")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert space.EMBEDDED_HUB_ID in meta["preload_from_hub"]
    assert meta["suggested_hardware"] == "cpu-basic"  # matches the CPU requirements.txt beside it
    for hardware, suggested, torch_line in (("cpu", "cpu-basic", "torch==2.13.0+cpu"),
                                            ("gpu", "t4-small", "torch==2.13.0"),
                                            ("zero-gpu", "zero-a10g", "torch==2.13.0")):
        out = publish.prepare_space_folder(tmp_path / hardware, REPO, hardware=hardware)
        card = yaml.safe_load((out / "README.md").read_text(encoding="utf-8").split("---\n")[1])
        assert card["suggested_hardware"] == suggested
        assert torch_line in (out / "requirements.txt").read_text().splitlines()
    with pytest.raises(ValueError, match="Unknown hardware 'tpu'"):
        publish.prepare_space_folder(tmp_path / "x", REPO, hardware="tpu")


def test_hardware_decides_models_dtype_and_limits() -> None:
    from culturesim.simulator.backends.transformers_backend import choose_dtype

    cpu = space.Hardware(None, 0.0, 2)
    t4 = space.Hardware("Tesla T4", 16.0, 4, compute_capability=(7, 5))
    zero = space.Hardware("NVIDIA H200 MIG 3g.71gb", 74.6, 8, zero_gpu=True, compute_capability=(9, 0))
    cpu_limits, t4_limits, zero_limits = (space.SpaceLimits.for_hardware(h) for h in (cpu, t4, zero))
    assert space.suggested_models(cpu_limits) == ["HuggingFaceTB/SmolLM2-360M-Instruct", "Qwen/Qwen2.5-0.5B-Instruct"]
    assert space.suggested_models(t4_limits)[-1] == "Qwen/Qwen2.5-3B-Instruct"  # 6B fits in 16 GB at 2 bytes
    assert "meta-llama/Llama-3.1-8B-Instruct" in space.suggested_models(zero_limits)
    for model in space.suggested_models(t4_limits):  # every suggestion passes the size check it is offered under
        space.check_model_size(model, t4, t4_limits, lookup_hub=False)
    assert choose_dtype(None, "cuda", "none", t4.compute_capability) == "float16"  # no bf16 on a T4
    assert choose_dtype(None, "cuda", "none", zero.compute_capability) == "bfloat16"
    assert zero_limits.job_timeout_s == device.ZERO_GPU_MAX_S + 120 and zero_limits.max_responses == 1000
    assert "ZeroGPU" in zero.describe() and zero.where == "ZeroGPU"
    labels = [space.model_kinds(h)["embedded"] for h in (cpu, t4, zero)]
    assert labels == ["SmolLM2-135M-Instruct (default, small; runs on this CPU)",
                      "SmolLM2-135M-Instruct (default, small; runs on this Tesla T4)",
                      "SmolLM2-135M-Instruct (default, small; runs on ZeroGPU)"]
    assert not any("offline" in label for label in labels)
    assert space.torch_build_warning(cpu) is None  # this machine: no NVIDIA GPU


def test_generation_slots_take_turns_in_arrival_order() -> None:
    slots = space.GenerationSlots(1)
    events: list[str] = []
    seen_ahead: dict[str, list[int]] = {"b": [], "c": []}
    cancel = threading.Event()
    first = slots.wait(cancel, poll_s=0.02)
    assert list(first) == []  # a free slot: no wait, nothing ahead

    def job(name: str) -> None:
        for ahead in slots.wait(threading.Event(), poll_s=0.02):
            seen_ahead[name].append(ahead)
        events.append(name)
        time.sleep(0.05)
        slots.release()

    b = threading.Thread(target=job, args=("b",))
    b.start()
    time.sleep(0.1)
    c = threading.Thread(target=job, args=("c",))
    c.start()
    time.sleep(0.1)
    waiting = slots.wait(cancel, poll_s=0.02)  # a fourth job, cancelled while it waits
    assert next(waiting) == 3  # a running, b and c waiting
    cancel.set()
    with pytest.raises(space.JobCancelled):
        list(waiting)
    slots.release()  # a finishes
    b.join(5)
    c.join(5)
    assert events == ["b", "c"]
    assert seen_ahead["b"][0] == 1 and seen_ahead["c"][0] == 2  # told how many are ahead


def test_bias_profile_keeps_dimensions_with_sex_and_age_data_even_without_matches() -> None:
    """A US GSS run where no question's top option matched the humans': the matched panel is
    zeros for the dimension, not "no question has sex/age data" (simulator.analysis.report)."""
    from culturesim.metrics.cultural_alignment import compute_alignment
    from culturesim.simulator.analysis.bias import bias_by_dimension

    demo = [{"group_type": "sex", "group": "female", "year": 2022, "n": 50, "distribution": [0.8, 0.2]},
            {"group_type": "sex", "group": "male", "year": 2022, "n": 50, "distribution": [0.6, 0.4]}]
    metric = compute_alignment(predictions=[[1, 1, 1, 1]], references=[[0.7, 0.3]], ordinal=[False],
                               value_dimensions=[["EVI"]], demographics=[demo], bootstrap_samples=0)
    assert metric["match_rate"] == 0.0  # the model prefers option 2, the humans option 1
    profile = bias_by_dimension(metric)
    assert profile["matched"]["EVI"]["female"] == 0 and profile["matched"]["EVI"]["male"] == 0
    # option 2's share: female 0.2, male 0.4 -> the model's preference is most typical of men
    assert profile["mismatched"]["EVI"]["male"] == 1 and profile["mismatched"]["EVI"]["female"] == 0


def test_notes_say_what_the_scores_leave_out(tmp_path: Path) -> None:
    from culturesim.simulator.questions import Question

    q1 = Question(id="q1", culture="US", language="en", question="Is family important?", options=["Yes", "No"],
                  option_codes=[1, 2], human_distribution=[0.9, 0.1], question_type="single_choice", ordinal=False,
                  human_n=100)
    q2 = Question(id="q2", culture="US", language="en", question="Is work important?", options=["Yes", "No"],
                  option_codes=[1, 2], human_distribution=[0.6, 0.4], question_type="single_choice", ordinal=False,
                  human_n=100)
    (tmp_path / "config.json").write_text(json.dumps({"model": "claude-haiku-4-5", "config_diversity": {
        "modification_on": True, "unavailable": ["num_beams"]}}))
    rows = [{"question_id": "q1", "status": "ok"}, {"question_id": "q2", "status": "no_answer"},
            {"question_id": "q2", "status": "error"}]
    notes = space.run_notes(tmp_path, {}, rows, [q1, q2])
    assert "Generation-settings variation lost" in notes and "claude-haiku-4-5 cannot apply num_beams" in notes
    assert "1 question got no usable answer" in notes and "Is work important? (`q2`): 1 no_answer, 1 error" in notes
    assert "Is family important?" not in notes
    from culturesim.space.glossary import STATUSES
    assert f"1 no_answer ({STATUSES['no_answer']})" in notes
    assert "SmolLM2" not in notes  # the embedded model's note only for the embedded model
    (tmp_path / "config.json").write_text(json.dumps({"model": space.EMBEDDED_MODEL}))
    assert "Why so many replies do not parse" in space.run_notes(tmp_path, {}, rows, [q1, q2])


def test_explore_empty_filter_and_languages_per_culture() -> None:
    from culturesim.space.explore import explore_languages, explore_message

    frame = space.dataset_frame()  # the built dataset: EG has no Japanese questions
    table = space.explore_table(frame, "EG", "ja", space.ALL, space.ALL, "PDI")
    assert table.empty and list(table.columns) == space.explore_table(frame).columns.tolist()
    message = explore_message(table, {"culture": "EG", "language": "ja", "value dimension": "PDI"})
    assert message.startswith("**No question matches** culture EG, language ja, value dimension PDI")
    assert explore_languages(frame, "EG") == [space.ALL, *sorted(set(frame[frame["culture"] == "EG"]["language"]))]
    assert "ja" not in explore_languages(frame, "EG") and "ja" in explore_languages(frame, space.ALL)
    assert space.explore_table(frame, "EG", search="no such words anywhere").empty


def test_backend_errors_reach_the_page_as_sentences() -> None:
    from culturesim.space.jobs import plain_error

    sdk = ("AuthenticationError (HTTP 401): Error code: 401 - {'type': 'error', 'error': "
           "{'type': 'authentication_error', 'message': \"invalid API key for anthropic: got '***'\"}}")
    assert plain_error(sdk) == "AuthenticationError (HTTP 401): invalid API key for anthropic: got '***'"
    stopped = (f"the anthropic backend got HTTP 401 on its first request to http://127.0.0.1:1, and no answer ({sdk}): "
               "check the API key in $ANTHROPIC_API_KEY (keys are read from the environment only)")
    from culturesim.space.jobs import _space_error

    said = _space_error(RuntimeError(stopped), None)
    assert "{" not in said and "$ANTHROPIC_API_KEY" not in said
    assert said.endswith("and no answer (AuthenticationError (HTTP 401): invalid API key for anthropic: got '***'): "
                         "check the Anthropic API key you pasted"), said
    assert plain_error("APIConnectionError: Connection error.") == "APIConnectionError: Connection error."
    assert plain_error("Error code: 500 - {not a dict") == "Error code: 500 - {not a dict"


def test_scores_table_shows_normalised_score_floors_and_their_meanings() -> None:
    from culturesim.metrics.cultural_alignment import compute_alignment

    metric = compute_alignment(predictions=[[0, 0, 1, 0], [1, 1, 0, 2]], references=[[0.7, 0.3], [0.2, 0.5, 0.3]],
                               ordinal=[False, True], value_dimensions=[["EVI"], ["TDI"]], bootstrap_samples=50,
                               human_n_effective=[400.0, 300.0],
                               seed=0)
    table = space.scores_table({"metric": metric}).set_index(["scope", "statistic"])
    for stat in ("kl", "js"):
        row = table.loc[("all questions", f"normalised {stat}")]
        assert row["value"] == pytest.approx(metric[f"normalised_{stat}"], abs=1e-4)
        assert row["ci low"] == pytest.approx(metric[f"normalised_{stat}_ci_low"], abs=1e-4)
        assert "1 = a perfect simulator, 0 = random answers" in row["meaning"]
        floor = ("all questions", f"floor {stat} (perfect simulator at this P)")
        assert table.loc[floor, "value"] == pytest.approx(metric[f"floor_{stat}_mean"], abs=1e-4)
        assert "sampling noise alone" in table.loc[floor, "meaning"]
        noise = ("all questions", f"survey noise {stat}")  # the other yardstick: the survey's own sampling noise
        assert table.loc[noise, "value"] == pytest.approx(metric[f"survey_noise_{stat}_mean"], abs=1e-4)
        assert "lower is better" in table.loc[("all questions", stat), "meaning"]
    assert table.loc[("all questions", "wasserstein"), "questions"] == 1  # over the ordinal question only
    assert "refusals" not in table.index.get_level_values(0)  # no statuses given: no refusal channel
    assert ("EVI", "normalised kl") in table.index and table.loc[("EVI", "kl"), "meaning"] == ""


def test_claude_job_takes_no_turn_on_the_local_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a local job holds the only generation turn, a Claude job still runs to its end."""
    from katan import start_katan

    slots = space.GenerationSlots(1)
    list(slots.wait(threading.Event()))  # a local job is generating
    spec = space.JobSpec(model_kind="claude", model_id="claude-haiku-4-5", culture="US", questions=1, participants=2,
                         max_new_tokens=16)
    messages = []
    with start_katan() as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_url)
        started = time.monotonic()
        try:
            for update in space.run_job(spec, tmp_path / "runs", space.SpaceLimits(), space.Hardware(None, 0, 2),
                                        api_key="sk-ant-any", slots=slots):
                messages.append(update.message)
        except space.JobFailed as exc:  # the echo server's replies name no option: a failure, but a finished one
            messages.append(str(exc))
        elapsed = time.monotonic() - started
    assert not any("Waiting for the model" in m for m in messages), messages
    assert elapsed < 60 and len(json.loads((tmp_path / "runs").iterdir().__next__().joinpath("config.json")
                                           .read_text())["participant_ids"]) == 2
    slots.release()


def test_chinese_and_arabic_options_draw_without_missing_glyphs() -> None:
    """The Noto fonts of space/packages.txt are used even when matplotlib's font cache predates them."""
    import warnings

    frame = space.dataset_frame()
    for culture, language in (("CN", "zh"), ("EG", "ar"), ("JP", "ja")):
        qid = frame[(frame["culture"] == culture) & (frame["language"] == language)]["id"].iloc[0]
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # "Glyph ... missing from font(s)" is a UserWarning
            _, _, fig = space.question_view(frame, qid)
            fig.canvas.draw()


def test_upload_against_the_built_dataset_scores_and_writes_its_report(tmp_path: Path) -> None:
    """Real GSS questions give the survey's own noise (from human_n_effective, or human_n in a
    dataset older than 3.0) beside the floor at the run's P, and worth N first; the report goes
    beside the run folder (a report never writes into its inputs)."""
    frame = space.dataset_frame()
    qids = list(frame[frame["id"].str.startswith("gss2022.")]["id"].iloc[:2])
    rows = [{"participant_id": p, "question_id": q, "status": "ok", "option_indices": [p % 2], "raw_text": "Answer: 1"}
            for q in qids for p in range(4)]
    upload = tmp_path / "responses.jsonl"
    upload.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = space.score_upload([str(upload)], tmp_path / "runs")
    assert result.scores["metric"]["n_questions"] == len(qids)
    metric = result.scores["metric"]
    assert next(iter(metric)) == "metric_version" and list(metric)[2] == "worth_n"
    assert metric["survey_noise_kl_mean"] is not None and metric["floor_kl_mean"] is not None
    assert result.summary.startswith("**Worth N respondents")
    files, note = space.report_files(result.run_dir, bootstrap_samples=20)
    assert note == "report written" and {p.name for p in files} == {"report.html", "report.json"}
    assert all(result.run_dir not in p.parents for p in files)
