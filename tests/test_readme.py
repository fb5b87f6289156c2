"""The README's opening commands and its Python examples stay true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_readme_opens_with_the_two_commands():
    first_block = re.search(r"```bash\n(.*?)```", README, re.S).group(1).strip().splitlines()
    assert len(first_block) == 2
    install_tour, install_tests = first_block
    assert "pip install torch==2.13.0" in install_tour and "ppl-models tour" in install_tour
    assert '".[test]"' in install_tests and "python -m pytest" in install_tests
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text()
    assert "torch==2.13.0" in ci and '".[test]"' in ci and "-m pytest" in ci


@pytest.mark.slow
def test_readme_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
