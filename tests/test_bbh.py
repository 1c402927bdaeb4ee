"""BIG-Bench-Hard families: reference programs, answer forms, uniqueness, the official-file loader, the data build."""

from __future__ import annotations

import io
import itertools
import json
import logging
import random
import re
import tarfile
import time
from pathlib import Path

import pytest
from conftest import shared_data
from hypothesis import given, settings
from hypothesis import strategies as st

from r1ci_cli.errors import R1ciError
from r1ci_cli.seeds import derive_rng
from r1ci_cli.tasks.bbh import FAMILIES
from r1ci_cli.tasks.bbh import _bigbench_build as builder
from r1ci_cli.tasks.bbh._common import LETTERS, load_official, verify
from r1ci_cli.tasks.bbh.knowledge import DATA_TASKS, load_or_skip, missing_data
from r1ci_cli.tasks.registry import Instance

BBH_SUBTASKS = {
    "boolean_expressions", "causal_judgement", "date_understanding", "disambiguation_qa", "dyck_languages",
    "formal_fallacies", "geometric_shapes", "hyperbaton", "logical_deduction_five_objects",
    "logical_deduction_seven_objects", "logical_deduction_three_objects", "movie_recommendation",
    "multistep_arithmetic_two", "navigate", "object_counting", "penguins_in_a_table",
    "reasoning_about_colored_objects", "ruin_names", "salient_translation_error_detection", "snarks",
    "sports_understanding", "temporal_sequences", "tracking_shuffled_objects_five_objects",
    "tracking_shuffled_objects_seven_objects", "tracking_shuffled_objects_three_objects", "web_of_lies",
    "word_sorting",
}
BY_NAME = {f.name: f for f in FAMILIES}
GENERATED = sorted(f.name for f in FAMILIES if f.generate is not None)
DATA_BACKED = sorted(f.name for f in FAMILIES if f.generate is None)
OPTION_FAMILIES = sorted(n for n in GENERATED if BY_NAME[n].generate(random.Random(0), BY_NAME[n].knobs)
                         .check["kind"] == "option")
REPO = Path(__file__).resolve().parents[1]


def make(name: str, index: int) -> Instance:
    family = BY_NAME[name]
    return family.generate(derive_rng(0, "test-bbh", name, index), family.knobs)


# ---------------------------------------------------------------------------------------------- registry


def test_the_27_official_subtasks_are_registered_20_generated_7_from_data():
    assert set(BY_NAME) == BBH_SUBTASKS
    assert len(GENERATED) == 20
    assert DATA_BACKED == sorted(DATA_TASKS)
    assert all(f.source == "bbh" for f in FAMILIES)


def test_data_families_have_no_generator_and_a_stored_reference():
    for name in DATA_BACKED:
        family = BY_NAME[name]
        assert family.generate is None and family.load is not None
        assert family.reference_kind == "stored"
        assert f"{name}.json" in family.needs_data


def run_batch(run_programs, sources: list[str]) -> list[str]:
    """Run many reference programs in one isolated interpreter (each in a fresh namespace, its stdout captured):
    one process start instead of twenty keeps this fast on a shared machine."""
    wrapper = (
        "import contextlib, io, json\n"
        f"sources = {sources!r}\n"
        "outputs = []\n"
        "for source in sources:\n"
        "    buffer = io.StringIO()\n"
        "    with contextlib.redirect_stdout(buffer):\n"
        "        exec(compile(source, '<reference>', 'exec'), {'__name__': '__main__'})\n"
        "    outputs.append(buffer.getvalue())\n"
        "print(json.dumps(outputs))\n")
    (stdout, stderr, code), = run_programs([wrapper])
    assert code == 0, stderr
    return json.loads(stdout)


@pytest.mark.parametrize("name", GENERATED)
def test_reference_programs_compute_answers_that_verify(name, run_programs):
    instances = [make(name, i) for i in range(20)]
    sources = [BY_NAME[name].reference_program(inst) for inst in instances]
    assert not any(re.fullmatch(r"print\([^()]*\)\n", s) for s in sources)  # computed, not a stored literal
    for inst, stdout in zip(instances, run_batch(run_programs, sources)):
        assert BY_NAME[name].verify(inst, stdout.strip()), (stdout, inst.answer)
        assert stdout.strip() == inst.answer


@pytest.mark.parametrize("name", GENERATED)
def test_questions_end_with_the_answer_instruction(name):
    for i in range(5):
        question = make(name, i).question
        assert re.search(r"Put your final answer .* in <<<\.\.\.>>>, e\.g\. <<<[^>]+>>>\.$", question)


@pytest.mark.parametrize("name", GENERATED)
def test_generators_make_at_least_200_instances_per_second(name):
    family = BY_NAME[name]
    family.generate(random.Random(0), family.knobs)  # warm caches (the table of all orders)
    start = time.process_time()  # CPU time: the machine is shared, wall time measures the neighbours
    for i in range(100):
        family.generate(random.Random(i), family.knobs)
    assert 100 / max(time.process_time() - start, 1e-9) >= 200


@pytest.mark.parametrize("name", GENERATED)
def test_perturbed_answers_are_rejected(name):
    for i in range(10):
        inst = make(name, i)
        wrong = BY_NAME[name].perturb(inst, inst.answer, random.Random(i))
        assert len(wrong) >= 2 and not any(BY_NAME[name].verify(inst, w) for w in wrong)


# ---------------------------------------------------------------------------------------------- answer forms


@pytest.mark.parametrize(("kind", "target", "good", "bad"), [
    ("option", "B", ["(B)", "B", "b)", "Option B", "(B) the second"], ["(C)", "BB", "", "(Z)", "B or C?"]),
    ("yesno", "Yes", ["Yes", "yes.", " YES "], ["No", "True", "Yes and no", "y"]),
    ("validity", "invalid", ["invalid", "Invalid."], ["valid", "not valid", "false"]),
    ("truth", "False", ["False", "false"], ["True", "No", "0"]),
    ("number", 24, ["24", "24.0", " 24 "], ["25", "24.5", "twenty-four", "24 apples"]),
    ("words", ["apple", "banana"], ["apple banana", "apple, banana", "[apple, banana]"], ["banana apple", "apple"]),
    ("dyck", "])", ["] )", "])", " ] ) "], [")]", "]", "] ) )", "a"]),
])
def test_verifier_normalises_each_answer_form_strictly(kind, target, good, bad):
    inst = Instance("q", {"kind": kind, "target": target, "num_options": 4})
    assert all(verify(inst, g) for g in good), good
    assert not any(verify(inst, b) for b in bad), bad


def test_verifier_never_raises_on_a_broken_check():
    assert not verify(Instance("q", {}), "(A)")
    assert not verify(Instance("q", {"kind": "nonsense", "target": "A"}), "(A)")


# ---------------------------------------------------------------------------------------------- uniqueness

SEEDS = st.integers(min_value=0, max_value=2**40)


@pytest.mark.parametrize("name", OPTION_FAMILIES)
@settings(max_examples=40, deadline=None)
@given(seed=SEEDS)
def test_options_are_distinct_and_exactly_one_letter_verifies(name, seed):
    inst = BY_NAME[name].generate(random.Random(seed), BY_NAME[name].knobs)
    options = inst.check["options"]
    assert len(set(options)) == len(options)
    for i, text in enumerate(options):
        assert f"\n({LETTERS[i]}) {text}\n" in inst.question + "\n"
    assert sum(verify(inst, f"({c})") for c in LETTERS[: len(options)]) == 1


@pytest.mark.parametrize("n", [3, 5, 7])
@settings(max_examples=25, deadline=None)
@given(seed=SEEDS)
def test_logical_deduction_clues_admit_one_order_and_one_true_option(n, seed):
    name = f"logical_deduction_{ {3: 'three', 5: 'five', 7: 'seven'}[n] }_objects"
    inst = BY_NAME[name].generate(random.Random(seed), BY_NAME[name].knobs)
    clues, query = inst.check["clues"], inst.check["query"]
    orders = [p for p in itertools.permutations(range(n))
              if all(p[c[1]] == c[2] if c[0] == "pos" else p[c[1]] < p[c[2]] for c in clues)]
    assert len(orders) == 1
    true_options = [obj for obj in range(n) if orders[0][obj] == query]
    assert len(true_options) == 1 and verify(inst, f"({LETTERS[true_options[0]]})")
    sentences = inst.question.split("Options:")[0]
    assert sentences.count(".") >= len(clues) + 2


@settings(max_examples=60, deadline=None)
@given(seed=SEEDS)
def test_temporal_sequences_have_exactly_one_free_option(seed):
    inst = BY_NAME["temporal_sequences"].generate(random.Random(seed), BY_NAME["temporal_sequences"].knobs)
    busy = {h for a, b in inst.check["sightings"] for h in range(a, b)}

    def hour(text):
        number, half = int(text[:-2]), text[-2:]
        return number % 12 + (12 if half == "pm" else 0)

    free = []
    for i, option in enumerate(inst.check["options"]):
        start, end = (hour(t) for t in option.split(" to "))
        if inst.check["wake"] <= start and end <= inst.check["close"] and not busy & set(range(start, end)):
            free.append(i)
    assert len(free) == 1 and verify(inst, f"({LETTERS[free[0]]})")


@settings(max_examples=60, deadline=None)
@given(seed=SEEDS)
def test_hyperbaton_has_exactly_one_ordered_option(seed):
    from r1ci_cli.tasks.bbh.hyperbaton import CATEGORY_ORDER, LEXICON

    inst = BY_NAME["hyperbaton"].generate(random.Random(seed), BY_NAME["hyperbaton"].knobs)
    rank = {adj: CATEGORY_ORDER.index(cat) for cat, adjs in LEXICON.items() for adj in adjs}
    ordered = [i for i, o in enumerate(inst.check["options"])
               if [rank[w] for w in o.split()[:-1]] == sorted(rank[w] for w in o.split()[:-1])]
    assert len(ordered) == 1 and verify(inst, f"({LETTERS[ordered[0]]})")


@settings(max_examples=60, deadline=None)
@given(seed=SEEDS)
def test_tracking_options_are_the_starting_items_and_one_is_held(seed):
    inst = BY_NAME["tracking_shuffled_objects_five_objects"].generate(random.Random(seed), {"num_swaps": 0})
    assert len(inst.check["swaps"]) == 5
    holding = list(range(5))
    for a, b in inst.check["swaps"]:
        holding[a], holding[b] = holding[b], holding[a]
    assert verify(inst, f"({LETTERS[holding[inst.check['asked']]]})")


@settings(max_examples=40, deadline=None)
@given(seed=SEEDS)
def test_formal_fallacies_labels_agree_with_model_search(seed):
    from r1ci_cli.tasks.bbh.fallacies import valid_by_models

    inst = BY_NAME["formal_fallacies"].generate(random.Random(seed), BY_NAME["formal_fallacies"].knobs)
    assert valid_by_models(inst.check["premises"], inst.check["conclusion"]) == inst.answer


def test_binary_answers_are_roughly_balanced():
    for name, yes in [("navigate", "Yes"), ("web_of_lies", "Yes"), ("formal_fallacies", "valid"),
                      ("boolean_expressions", "True")]:
        share = sum(make(name, i).answer == yes for i in range(300)) / 300
        assert 0.3 <= share <= 0.7, (name, share)


def test_knobs_change_difficulty():
    family = BY_NAME["word_sorting"]
    inst = family.generate(random.Random(1), {"min_words": 12, "max_words": 12})
    assert len(inst.check["words"]) == 12
    family = BY_NAME["multistep_arithmetic_two"]
    inst = family.generate(random.Random(1), {"num_groups": 3, "terms_per_group": 2, "max_abs": 9})
    assert inst.check["expression"].count("(") == 4
    family = BY_NAME["dyck_languages"]
    inst = family.generate(random.Random(1), {"min_length": 41, "max_length": 41, "max_unclosed": 1})
    assert len(inst.check["sequence"].split()) == 41 and len(inst.check["target"]) == 1


# ---------------------------------------------------------------------------------------------- official files


def test_loader_reads_the_official_files(run_programs):
    data_dir = shared_data() / "bbh"
    loaded = [name for name in GENERATED if (data_dir / f"{name}.json").is_file()]
    assert loaded
    for name in loaded:
        items = BY_NAME[name].load(data_dir)
        assert len(items) == 250
        assert all(i.check["stored"] and BY_NAME[name].verify(i, i.answer) for i in items)
        assert all(i.question.endswith(">>>.") for i in items)
        (stdout, _, code), = run_programs([BY_NAME[name].reference_program(items[0])])
        assert code == 0 and stdout.strip() == items[0].answer


def _write(tmp_path: Path, name: str, content: str) -> Path:
    (tmp_path / f"{name}.json").write_text(content)
    return tmp_path


@pytest.mark.parametrize(("content", "expected"), [
    ("{not json", "not valid JSON"),
    ('{"items": []}', "field 'examples'"),
    ('{"examples": [3]}', "examples[0]: expected an object"),
    ('{"examples": [{"target": "(A)"}]}', "examples[0]: field 'input'"),
    ('{"examples": [{"input": "q\\nOptions:\\n(A) x\\n(B) y", "target": "(A)"}, {"input": "q", "target": 7}]}',
     "examples[1]: field 'target'"),
    ('{"examples": [{"input": "q\\nOptions:\\n(A) x\\n(B) y", "target": "A"}]}', "is not a option answer"),
    ('{"examples": [{"input": "q\\nOptions:\\n(A) x\\n(B) y", "target": "(D)"}]}', "not among the input's options"),
])
def test_loader_errors_are_one_line_naming_file_and_field(tmp_path, content, expected):
    _write(tmp_path, "snarks", content)
    with pytest.raises(R1ciError) as err:
        BY_NAME["snarks"].load(tmp_path)
    message = str(err.value)
    assert "\n" not in message and "snarks.json" in message and expected in message


def test_loader_checks_targets_against_the_family_answer_form(tmp_path):
    _write(tmp_path, "navigate", json.dumps({"examples": [{"input": "Go?", "target": "(A)"}]}))
    with pytest.raises(R1ciError, match=r"examples\[0\]: field 'target'"):
        BY_NAME["navigate"].load(tmp_path)


def test_loader_names_the_missing_file(tmp_path):
    with pytest.raises(R1ciError, match="ruin_names.json: not found.*make data-bbh"):
        load_official(tmp_path, "ruin_names", "option")


def test_data_families_are_skipped_with_one_line_each_without_data(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="r1ci.tasks.bbh")
    for name in DATA_BACKED:
        assert load_or_skip(BY_NAME[name], tmp_path) is None
        assert load_or_skip(BY_NAME[name], None) is None
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 * len(DATA_BACKED)
    assert all("skipped" in line and "\n" not in line and "make data-bbh" in line for line in lines)
    assert all(any(f"{name}.json" in line for line in lines) for name in DATA_BACKED)
    assert missing_data(BY_NAME["navigate"], None) is None  # generated families never need data


# ---------------------------------------------------------------------------------------------- data build


def _synthetic_tasks() -> dict[str, dict]:
    """Small task.json files in BIG-bench's format for every knowledge-bound subtask."""
    def task(examples, **extra):
        return {"name": "x", "canary": "CANARY", "examples": examples, **extra}

    return {
        "causal_judgment": task([{"input": "Did Bob cause it?", "target_scores": {"Yes": 1, "No": 0}},
                                 {"input": "Tie?", "target_scores": {"Yes": 1, "No": 1}}],
                                task_prefix="How would a typical person answer each of the following questions "
                                            "about causation?\n\n"),
        "disambiguation_qa": task([{"input": "Sam told Ann he was late.", "target_scores": {
            "Sam was late": 1, "Ann was late": 0, "Ambiguous": 0}}],
            task_prefix="In the following sentences, explain the antecedent of the pronoun (which thing the "
                        "pronoun refers to), or state that it is ambiguous.\n"),
        "movie_recommendation": task([{"input": f"Movie {i}, Movie {i + 1}:", "target_scores": {
            f"Right {i}": 1, f"Wrong {i}a": 0, f"Wrong {i}b": 0, f"Wrong {i}c": 0}} for i in range(12)]),
        "ruin_names": task([{"input": "Which of the following is a humorous edit of this artist or movie name: "
                                      "'star wars'?", "target_scores": {"stare wars": 1, "star was": 0}}]),
        "salient_translation_error_detection": task([{
            "input": "Source: Ein Haus.\nTranslation: Two houses.\nThe translation contains an error pertaining to ",
            "target_scores": {"Modifiers or Adjectives": 0, "Numerical Values": 1, "Negation or Antonyms": 0,
                              "Named Entities": 0, "Dropped Content": 0, "Facts": 0}}],
            task_prefix="The following translations from German to English contain a particular error.\n"),
        "snarks": task([{"input": "Which statement is sarcastic? (a) Great, rain again. (b) Rain again.",
                         "target_scores": {"(a)": 1, "(b)": 0}}]),
        "sports_understanding": task([{"input": "Messi scored a touchdown",
                                       "target_scores": {"plausible": 0, "implausible": 1}},
                                      {"input": "Messi scored a touchdown",
                                       "target_scores": {"plausible": 0, "implausible": 1}}]),
    }


def _source_dir(tmp_path: Path, tasks: dict[str, dict]) -> Path:
    root = tmp_path / "bigbench-1.0.0"
    for name, content in tasks.items():
        path = root / "bigbench" / "benchmark_tasks" / name / "task.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(content))
    return root


def test_builder_writes_bbh_style_files_that_load(tmp_path, run_programs):
    out = tmp_path / "bbh"
    counts = builder.build(_source_dir(tmp_path, _synthetic_tasks()), out, max_per_task=5, seed=0)
    assert counts == {"causal_judgement": 1, "disambiguation_qa": 1, "movie_recommendation": 5, "ruin_names": 1,
                      "salient_translation_error_detection": 1, "snarks": 1, "sports_understanding": 1}
    files = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert files["causal_judgement"]["examples"] == [{
        "input": "How would a typical person answer each of the following questions about causation?\n"
                 "Did Bob cause it?\nOptions:\n- Yes\n- No", "target": "Yes"}]
    assert files["snarks"]["examples"][0] == {
        "input": "Which statement is sarcastic?\nOptions:\n(A) Great, rain again.\n(B) Rain again.", "target": "(A)"}
    assert files["sports_understanding"]["examples"][0] == {
        "input": 'Is the following sentence plausible? "Messi scored a touchdown."', "target": "no"}
    salient = files["salient_translation_error_detection"]["examples"][0]
    assert salient["input"].endswith("pertaining to\nOptions:\n(A) Modifiers or Adjectives\n(B) Numerical Values\n"
                                     "(C) Negation or Antonyms\n(D) Named Entities\n(E) Dropped Content\n(F) Facts")
    assert salient["target"] == "(B)"
    movies = files["movie_recommendation"]["examples"]
    for example in movies:  # the right movie is shuffled away from (A) sometimes, and the target follows it
        letter = example["target"][1]
        assert re.search(rf"^\({letter}\) Right \d+$", example["input"], re.M)
    assert {e["target"] for e in movies} != {"(A)"}
    for name in DATA_BACKED:
        items = BY_NAME[name].load(out)
        assert all(BY_NAME[name].verify(i, i.answer) for i in items)
        (stdout, _, code), = run_programs([BY_NAME[name].reference_program(items[0])])
        assert code == 0 and stdout.strip() == items[0].answer


def test_builder_is_deterministic_and_reads_the_sdist_tarball(tmp_path):
    source = _source_dir(tmp_path, _synthetic_tasks())
    archive = tmp_path / "bigbench-1.0.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname="bigbench-1.0.0")
    builder.build(source, tmp_path / "a", max_per_task=5, seed=3)
    builder.build(archive, tmp_path / "b", max_per_task=5, seed=3)
    for path in sorted((tmp_path / "a").glob("*.json")):
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes()
    builder.build(source, tmp_path / "c", max_per_task=5, seed=4)
    first = (tmp_path / "a" / "movie_recommendation.json").read_bytes()
    assert first != (tmp_path / "c" / "movie_recommendation.json").read_bytes()


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda t: t["snarks"].update(examples={}), "field 'examples'"),
    (lambda t: t["snarks"]["examples"][0].pop("target_scores"), "examples[0]: field 'target_scores'"),
    (lambda t: t["snarks"]["examples"][0].update(input=None), "examples[0]: field 'input'"),
    (lambda t: t.pop("ruin_names"), "no benchmark_tasks/<task>/task.json for ruin_names"),
])
def test_builder_errors_name_the_file_and_field(tmp_path, mutate, expected):
    tasks = _synthetic_tasks()
    mutate(tasks)
    with pytest.raises(R1ciError) as err:
        builder.build(_source_dir(tmp_path, tasks), tmp_path / "out")
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_builder_main_reports_errors_in_one_line(tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="r1ci.tasks.bbh.build")
    assert builder.main([str(tmp_path / "absent.tar.gz"), "-o", str(tmp_path / "out")]) == 1
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(messages) == 1 and "absent.tar.gz: not found" in messages[0] and "\n" not in messages[0]


@pytest.mark.slow
def test_builder_on_the_real_bigbench_sdist(tmp_path):
    archive = REPO / "data" / "cache" / "bigbench" / "bigbench-1.0.0.tar.gz"
    if not archive.is_file():
        pytest.skip(f"{archive} not downloaded (shell/make-data-bbh.sh fetches it)")
    counts = builder.build(archive, tmp_path)
    assert set(counts) == set(DATA_TASKS) and all(150 <= n <= 250 for n in counts.values())
    for name in DATA_BACKED:
        assert all(BY_NAME[name].verify(i, i.answer) for i in BY_NAME[name].load(tmp_path))


def test_tar_member_reading_ignores_other_tasks(tmp_path):
    archive = tmp_path / "s.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = json.dumps({"examples": []}).encode()
        info = tarfile.TarInfo("pkg/bigbench/benchmark_tasks/other/task.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(R1ciError, match="no benchmark_tasks/<task>/task.json for snarks"):
        builder.build(archive, tmp_path / "out", subtasks=["snarks"])


@pytest.mark.parametrize("name", GENERATED)
def test_instances_survive_a_json_round_trip(name, run_programs):
    """Tasks travel as JSON records: verify and the reference program must work on the reloaded check."""
    originals = [make(name, i) for i in range(5)]
    reloaded = [Instance(i.question, json.loads(json.dumps(i.check)), json.loads(json.dumps(i.answer)))
                for i in originals]
    sources = [BY_NAME[name].reference_program(i) for i in reloaded]
    assert sources == [BY_NAME[name].reference_program(i) for i in originals]
    for inst, stdout in zip(reloaded, run_batch(run_programs, sources)):
        assert BY_NAME[name].verify(inst, stdout.strip())


def test_registry_lists_every_bbh_family_once():
    from r1ci_cli.tasks import registry

    names = [f.name for f in registry.families(["bbh"])]
    assert sorted(names) == sorted(BBH_SUBTASKS)


@pytest.mark.parametrize(("name", "knobs", "expected"), [
    ("web_of_lies", {"num_people": 500}, "num_people=500"),
    ("word_sorting", {"min_words": 9, "max_words": 3}, "the minimum exceeds the maximum"),
    ("navigate", {"min_instructions": [3, 5], "max_instructions": 7, "max_steps": 10}, "min_instructions"),
    ("geometric_shapes", {"shapes": ["blob"], "max_coord": 100.0}, "shapes"),
    ("logical_deduction_five_objects", {"absolute_clue_prob": 2}, "absolute_clue_prob"),
])
def test_bad_difficulty_knobs_are_one_line_user_errors(name, knobs, expected):
    with pytest.raises(R1ciError, match=re.escape(expected)):
        BY_NAME[name].generate(random.Random(0), knobs)
