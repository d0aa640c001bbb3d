"""README stays true: Spaces front matter, the two set-up commands, and every setting documented."""

from __future__ import annotations

import re

from tests.app_process import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_spaces_front_matter_matches_the_pinned_gradio() -> None:
    front = README.split("---")[1]
    fields = dict(line.split(": ", 1) for line in front.strip().splitlines())
    pinned = re.search(r"^gradio==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert fields["sdk"] == "gradio" and fields["sdk_version"] == pinned and fields["app_file"] == "app.py"
    assert all(fields.get(name) for name in ("title", "emoji", "short_description", "license"))
    assert len(fields["short_description"]) <= 60  # Spaces rejects longer ones


def test_ci_runs_the_readme_test_command() -> None:
    commands = re.findall(r"```bash\n(.+?)\n```", README)
    assert commands[:2] == [
        "pip install -r requirements.txt && python app.py",
        "pip install -r requirements-dev.txt && python -m pytest",
    ]
    assert commands[1] in (ROOT / ".ci" / "run").read_text()


def test_every_environment_variable_the_code_reads_is_documented() -> None:
    config = (ROOT / "chat_backend" / "config.py").read_text()
    names = set(re.findall(r'env(?:\.get\(|, )"([A-Z_]+)"', config)) | {"GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT"}
    assert len(names) > 10
    missing = [name for name in sorted(names) if f"`{name}`" not in README]
    assert not missing, f"not in README's table: {missing}"
