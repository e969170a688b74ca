"""The documentation site (docs/, built by `make docs`) stays true to the code.

The API reference lists every public name, and the semantics page's worked example prints
what the page says it prints. The build itself (`mkdocs build --strict`: broken links and
references) is `make docs`, run by CI.
"""

from __future__ import annotations

import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import relive
import relive.testing

DOCS = Path(__file__).resolve().parent.parent / "docs"


def directive_members(page: str, target: str) -> list[str] | None:
    """The `members:` list under `::: target` in a docs page; None when it has none."""
    text = (DOCS / page).read_text()
    block = re.search(rf"^::: {re.escape(target)}\n((?:    .*\n|\n)*)", text, re.M)
    assert block, f"docs/{page} has no '::: {target}'"
    members = re.search(r"^      members:\n((?:        - .*\n)+)", block.group(1), re.M)
    if members is None:
        return None
    return re.findall(r"- (\S+)", members.group(1))


def test_api_reference_lists_every_public_name() -> None:
    listed = directive_members("api.md", "relive")
    assert listed is not None, "docs/api.md must list relive's members explicitly"
    public = {name for name in relive.__all__ if name != "__version__"}
    assert sorted(listed) == sorted(public), "docs/api.md and relive.__all__ differ"


def test_every_public_module_has_a_reference_page() -> None:
    public = {
        f"relive.{info.name}"
        for info in pkgutil.iter_modules(relive.__path__)
        if not info.name.startswith("_")
    }
    documented = {
        match
        for page in DOCS.rglob("*.md")
        for match in re.findall(r"^::: (relive\.\w+)$", page.read_text(), re.M)
    }
    assert public <= documented, f"no '::: NAME' page for {sorted(public - documented)}"


def test_testing_reference_follows_its_all() -> None:
    # No explicit list: mkdocstrings documents what relive.testing.__all__ exports.
    assert directive_members("testing.md", "relive.testing") is None
    assert relive.testing.__all__


def normalized(output: str) -> list[str]:
    """Lines with the time a reload took and temporary paths replaced."""
    output = re.sub(r"in \d+(\.\d+)? ms", "in <t> ms", output)
    return [line.rstrip() for line in output.strip().splitlines()]


def test_semantics_example_prints_what_the_page_shows(tmp_path: Path) -> None:
    text = (DOCS / "semantics.md").read_text()
    section = text[text.index("## Seen in a real session") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    shown = re.search(r"```text\n(.*?)```", section, re.S)
    assert code and shown
    script = tmp_path / "example.py"
    script.write_text(code.group(1))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert normalized(result.stdout) == normalized(shown.group(1))
