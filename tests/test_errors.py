"""Text from a config file reaches the terminal escaped: one line per error, no escape codes."""

from __future__ import annotations

from typer.testing import CliRunner

from xorlab.cli import app
from xorlab.errors import ConfigError, XorlabError, safe_text

from .conftest import write

runner = CliRunner()


def test_safe_text_escapes_control_and_format_characters_like_repr():
    assert safe_text("plain é 日本") == "plain é 日本"
    assert safe_text("a\nb") == "a\\nb"
    assert (
        safe_text("\x1b[31mRED\x1b[0m\x1b]0;title\x07") == "\\x1b[31mRED\\x1b[0m\\x1b]0;title\\x07"
    )
    assert safe_text("left\u202eright\tx\r") == "left\\u202eright\\tx\\r"


def test_error_lines_are_escaped():
    assert XorlabError("bad\nvalue", file="f\x1b.yaml", key="k").lines() == [
        "f\\x1b.yaml: k: bad\\nvalue"
    ]
    assert ConfigError([("a\nb", "unknown key")], file="c.yaml").lines() == [
        "c.yaml: a\\nb: unknown key"
    ]


def test_a_config_key_with_a_newline_or_escapes_is_one_escaped_line(tmp_path):
    p = write(tmp_path, 'name: x\n"\\e[31mRED\\e[0m\\e]0;title\\a": 1\n"two\\nlines": 2\n')
    res = runner.invoke(app, ["validate", str(p)])
    assert res.exit_code == 2, res.output
    assert "\x1b" not in res.output and "\x07" not in res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert all(ln.startswith("error: ") for ln in lines), lines
    assert any("\\x1b[31mRED\\x1b[0m\\x1b]0;title\\x07" in ln for ln in lines), lines
    assert any("two\\nlines" in ln for ln in lines), lines
