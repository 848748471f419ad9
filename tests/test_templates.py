"""Templates: dataset lines rendered into prompts; request_hash follows the rendered text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from netfly_batch.batch.templates import LineTemplate, TemplateError, Text
from netfly_batch.cli import main

LINE = {"title": "Attention", "meta": {"year": 2017, "venue": "NeurIPS"}, "tags": ["nlp"],
        "n": 3, "flag": None}  # fmt: skip


@pytest.mark.parametrize(("template", "text"), [
    ("{title}", "Attention"),
    ("{meta.year} at {meta.venue}", "2017 at NeurIPS"),
    ("tags {tags}, n={n}, flag={flag}", 'tags ["nlp"], n=3, flag=null'),
    ("{{literal}} and {{ {title} }}", "{literal} and { Attention }"),
    ("{ title }", "Attention"),
    ("{meta}", '{"year":2017,"venue":"NeurIPS"}'),
], ids=["field", "nested", "not strings as JSON", "braces", "spaces", "object"])  # fmt: skip
def test_render(template, text):
    """Fields, nested fields, JSON for non-strings, doubled braces."""
    assert Text.parse(template).render(LINE) == text


@pytest.mark.parametrize(("template", "problem"), [
    ("a { b", "lone '{' at character 3"), ("a } b", "lone '}' at character 3"),
    ("{}", "empty field name"), ("{a..b}", "empty field name"),
], ids=["open", "close", "empty", "empty part"])  # fmt: skip
def test_bad_templates_are_named(template, problem):
    """A template that cannot be used says where."""
    with pytest.raises(TemplateError, match=problem):
        Text.parse(template)


def test_apply_builds_messages_params_and_metadata():
    """The user (and system) message, --param-fields as parameters, --keep-fields kept."""
    template = LineTemplate.from_text(
        "About {title}", "Be brief about {meta.venue}.", ["n", "absent"], ["title"]
    )
    request, metadata = template.apply(LINE, {"batch": 7})  # type: ignore[misc]
    assert request == {
        "messages": [
            {"role": "system", "content": "Be brief about NeurIPS."},
            {"role": "user", "content": "About Attention"},
        ],
        "n": 3,
    }
    assert metadata == {"batch": 7, "title": "Attention"}
    missing = template.apply({"meta": {}}, None)
    assert missing == "the template names the field 'title', which this line lacks"


def run(tmp_path: Path, lines: list[dict[str, Any]], *options: str):
    data = tmp_path / "data.jsonl"
    data.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    out = tmp_path / "out.jsonl"
    summary = tmp_path / "summary.json"
    result = CliRunner().invoke(main, ["run", str(data), "-o", str(out), "--simulate", "-q",
                                       "--summary-json", str(summary), *options])  # fmt: skip
    rows = {r["id"]: r for r in map(orjson.loads, out.read_bytes().splitlines())}
    return result, rows, orjson.loads(summary.read_bytes())


def test_a_template_edit_redoes_exactly_the_lines_it_changes(tmp_path):
    """From {a} to {b}: a line whose a equals its b is left as it is, the other redone."""
    lines = [{"id": "same", "a": "x", "b": "x"}, {"id": "diff", "a": "y", "b": "z"}]
    first, rows, _ = run(tmp_path, lines, "--template", "Say {a}")
    assert first.exit_code == 0, first.output
    assert rows["diff"]["content"] == "Echo: Say y"
    _, rows, summary = run(tmp_path, lines, "--template", "Say {b}")
    assert (summary["skipped_ok"], summary["redone_changed"], summary["ok"]) == (1, 1, 1)
    assert rows["diff"]["content"] == "Echo: Say z"


def test_dataset_fields_are_not_parameters_unless_named(tmp_path):
    """A line's `model` is a dataset field with a template; --param-fields sends it."""
    lines = [{"id": "1", "q": "hi", "model": "m-line", "temperature": 0.1}]
    _, rows, _ = run(tmp_path, lines, "--template", "{q}")
    assert rows["1"]["model"] == "gpt-3.5-turbo"
    second = tmp_path / "second"
    second.mkdir()
    _, rows, _ = run(second, lines, "--template", "{q}", "--param-fields",
                     "model", "--keep-fields", "q", "--fresh")  # fmt: skip
    assert rows["1"]["model"] == "m-line"
    assert rows["1"]["metadata"] == {"q": "hi"}


def test_template_options_are_checked_before_anything_is_sent(tmp_path):
    """A bad template, or --system without one, is a usage error (exit 2)."""
    lines = [{"id": "1", "q": "hi"}]
    data = tmp_path / "d.jsonl"
    data.write_bytes(orjson.dumps(lines[0]) + b"\n")
    for options, message in ((["--template", "{q"], "lone '{'"),
                             (["--system", "x"], "--system goes with --template")):  # fmt: skip
        result = CliRunner().invoke(main, ["run", str(data), "-o", str(tmp_path / "o.jsonl"),
                                           "--simulate", *options])  # fmt: skip
        assert result.exit_code == 2
        assert message in result.output
    template = tmp_path / "t.txt"
    template.write_text("Question: {q}\n")
    _, rows, _ = run(tmp_path, lines, "--template-file", str(template))
    assert rows["1"]["content"] == "Echo: Question: hi"
