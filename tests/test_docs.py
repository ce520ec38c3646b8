"""Every code sample in README.md and docs/*.md runs, type-checks, and every link resolves.

A fenced block whose info string is exactly ``python`` is a sample. The samples of one file
run in order in one fresh module, like cells of a notebook: later blocks see what earlier
blocks defined. Blocks tagged ``python-fail``, ``text`` or anything else are not run; a
``python-fail`` block shows code the type checker rejects, and the typing tests check that
mypy does report an error in it.

A ``from __future__ import ...`` may only open the *first* sample of a file; it then applies
to every sample of that file (as it does when the samples are pasted into one module, which
is what the type check does).
"""

from __future__ import annotations
import __future__

import ast
import re
import sys
import types
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
INDEX = DOCS / "index.md"

_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
_INLINE_CODE = re.compile(r"`+[^`]*`+")


@dataclass(frozen=True)
class Block:
    """One fenced code block: info string, first code line, closing fence line, code.

    Line numbers are 1-based.
    """

    info: str
    line: int
    end: int
    code: str


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def fenced_blocks(text: str) -> list[Block]:
    """Top-level fenced blocks (``` or ~~~ at column 0) in document order."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence = opening["fence"]
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not (
            lines[j].startswith(fence[0] * len(fence)) and not lines[j].strip(fence[0]).strip()
        ):
            body.append(lines[j])
            j += 1
        if j == len(lines):
            raise AssertionError(f"unclosed code fence opened on line {i + 1}")
        blocks.append(Block(opening["info"].strip(), i + 2, j + 1, "\n".join(body) + "\n"))
        i = j + 1
    return blocks


def identifier(path: Path) -> str:
    """``docs/engine.md`` -> ``docs_engine_md``: a name usable for a module."""
    return re.sub(r"\W", "_", rel(path))


def python_blocks(path: Path) -> list[Block]:
    return [b for b in fenced_blocks(path.read_text(encoding="utf-8")) if b.info == "python"]


def padded(block: Block) -> str:
    """The block's code preceded by blank lines, so line numbers are those of the file."""
    return "\n" * (block.line - 1) + block.code


def future_flags(blocks: list[Block]) -> int:
    """Compiler flags of the ``from __future__`` imports opening the first block."""
    flags = 0
    for i, block in enumerate(blocks):
        for node in ast.walk(ast.parse(padded(block))):
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                if i > 0:
                    raise AssertionError(
                        f"line {node.lineno}: only the first python block of a file may use "
                        "`from __future__ import`"
                    )
                for alias in node.names:
                    flags |= getattr(__future__, alias.name).compiler_flag
    return flags


def without_fences(text: str) -> str:
    """A markdown file with its fenced blocks blanked out (line numbers kept)."""
    lines = text.splitlines()
    for block in fenced_blocks(text):
        for k in range(block.line - 2, block.end):  # opening fence to closing fence
            lines[k] = ""
    return "\n".join(lines)


def without_code(text: str) -> str:
    """The prose of a markdown file: fenced blocks and inline code removed."""
    return _INLINE_CODE.sub("", without_fences(text))


def local_links(path: Path) -> list[tuple[str, str]]:
    """``(file, anchor)`` of the links of a markdown file that point inside the repository.

    ``file`` is empty for an anchor in the same page, ``anchor`` is empty when there is none.
    """
    links = []
    for m in _LINK.finditer(without_code(path.read_text(encoding="utf-8"))):
        target = m["target"]
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # an URL: https:, mailto:
        file, _, anchor = target.partition("#")
        links.append((file, anchor))
    return links


def anchors(path: Path) -> set[str]:
    """The anchors GitHub derives from the headings of a markdown file."""
    found = set()
    for line in without_fences(path.read_text(encoding="utf-8")).splitlines():
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            text = heading[1].replace("`", "").lower()
            found.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return found


FILES = doc_files()
IDS = [rel(p) for p in FILES]


def test_the_documentation_exists() -> None:
    assert INDEX.is_file(), "docs/index.md is missing"
    assert len(FILES) > 2


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_python_samples_run(path: Path) -> None:
    blocks = python_blocks(path)
    assert blocks, f"{rel(path)} shows no ```python sample"
    flags = future_flags(blocks)
    name = f"_docs_sample_{identifier(path)}_{uuid.uuid4().hex[:8]}"
    module = types.ModuleType(name, f"Samples of {rel(path)}")
    module.__file__ = str(path)
    sys.modules[name] = module
    try:
        for block in blocks:
            code = compile(padded(block), str(path), "exec", flags=flags, dont_inherit=True)
            exec(code, module.__dict__)
    finally:
        sys.modules.pop(name, None)


def mypy_errors(blocks: list[Block], tmp_path: Path, path: Path) -> list[tuple[int, str]]:
    """mypy --strict on ``blocks`` pasted into one module: ``(markdown line, message)``."""
    from mypy import api

    source = ""
    for block in blocks:  # every line keeps its number from the markdown file
        source += "\n" * (block.line - 1 - source.count("\n")) + block.code
    module = tmp_path / f"{identifier(path)}.py"
    module.write_text(source, encoding="utf-8")
    stdout, stderr, _status = api.run(
        ["--strict", "--no-error-summary", "--no-color-output", str(module)]
    )
    assert not stderr, stderr
    errors = []
    for line in stdout.splitlines():
        found = re.match(r".*?:(\d+): error: (.*)", line)
        if found:
            errors.append((int(found[1]), found[2]))
    return errors


@pytest.mark.typing
@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_python_samples_type_check(path: Path, tmp_path: Path) -> None:
    blocks = python_blocks(path)
    assert blocks, f"{rel(path)} shows no ```python sample"
    errors = mypy_errors(blocks, tmp_path, path)
    assert not errors, "\n".join(f"{rel(path)}:{line}: {message}" for line, message in errors)


FAIL_FILES = [
    p
    for p in FILES
    if any(b.info == "python-fail" for b in fenced_blocks(p.read_text(encoding="utf-8")))
]


@pytest.mark.typing
@pytest.mark.parametrize("path", FAIL_FILES, ids=[rel(p) for p in FAIL_FILES])
def test_python_fail_samples_are_rejected_by_mypy(path: Path, tmp_path: Path) -> None:
    """A ``python-fail`` block, after the samples before it, must make mypy report an error."""
    blocks = [
        b
        for b in fenced_blocks(path.read_text(encoding="utf-8"))
        if b.info in ("python", "python-fail")
    ]
    errors = mypy_errors(blocks, tmp_path, path)
    for block in blocks:
        inside = [message for line, message in errors if block.line <= line < block.end]
        if block.info == "python-fail":
            assert inside, f"{rel(path)}:{block.line}: mypy accepts this python-fail block"
        else:
            assert not inside, f"{rel(path)}:{block.line}: {inside}"


def test_every_page_is_linked_from_the_index() -> None:
    linked = {(DOCS / file).resolve() for file, _ in local_links(INDEX) if file}
    missing = [
        rel(p) for p in sorted(DOCS.glob("*.md")) if p != INDEX and p.resolve() not in linked
    ]
    assert not missing, f"docs/index.md does not link to {missing}"


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_relative_links_resolve(path: Path) -> None:
    broken = []
    for file, anchor in local_links(path):
        target = path.parent / file if file else path
        if not target.exists():
            broken.append(f"{file} (no such file)")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            broken.append(f"{file}#{anchor} (no such heading)")
    assert not broken, f"{rel(path)} has broken links: {broken}"
