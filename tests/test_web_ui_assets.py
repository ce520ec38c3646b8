"""The web UI's vendored assets: pinned, hashed, licensed, packaged, and nothing from a CDN."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "workflows4py"
STATIC = PACKAGE / "web" / "static"
VENDOR = STATIC / "vendor"


def _manifest() -> list[dict[str, str]]:
    entries: list[dict[str, str]] = json.loads((VENDOR / "manifest.json").read_text("utf-8"))
    return entries


def test_the_manifest_names_the_versions_package_lock_pins() -> None:
    lock = json.loads((ROOT / "package-lock.json").read_text("utf-8"))["packages"]
    entries = _manifest()
    assert {entry["package"] for entry in entries} == {"mermaid", "bpmn-js"}
    for entry in entries:
        assert entry["version"] == lock[f"node_modules/{entry['package']}"]["version"], entry
    assert {(e["package"], e["version"]) for e in entries} == {
        ("mermaid", "11.17.2"),
        ("bpmn-js", "18.31.1"),
    }


def test_every_vendored_file_has_the_hash_the_manifest_records() -> None:
    listed = set()
    for entry in _manifest():
        path = VENDOR / entry["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], entry["file"]
        listed.add(path)
    on_disk = {p for p in VENDOR.rglob("*") if p.is_file() and p.name != "manifest.json"}
    assert on_disk == listed


def test_each_package_ships_its_licence() -> None:
    for package in ("mermaid", "bpmn-js"):
        licence = (VENDOR / package / "LICENSE").read_text("utf-8")
        assert "Permission is hereby granted" in licence


def test_the_vendored_files_are_the_ones_the_ui_loads() -> None:
    files = {entry["file"] for entry in _manifest()}
    assert {
        "mermaid/mermaid.min.js",
        "bpmn-js/bpmn-navigated-viewer.production.min.js",
        "bpmn-js/diagram-js.css",
        "bpmn-js/bpmn-js.css",
    } <= files


def test_index_html_references_nothing_outside_static() -> None:
    html = (STATIC / "index.html").read_text("utf-8")
    references = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert references, "index.html references no asset"
    for reference in references:
        assert "//" not in reference, reference
        assert reference in {"/", "./", "instances"} or reference.startswith("static/"), reference
    sources = [p.read_text("utf-8") for p in (STATIC / "js").glob("*.js")]
    sources.append((STATIC / "app.css").read_text("utf-8"))
    for text in sources:
        assert not re.search(r"""(?:import|url\(|src=|fetch\()\s*["']?https?:""", text)
        assert "cdn" not in text.lower()


def test_the_package_data_glob_covers_every_static_file() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    globs = config["tool"]["setuptools"]["package-data"]["workflows4py"]
    files = [p.relative_to(PACKAGE).as_posix() for p in STATIC.rglob("*") if p.is_file()]
    assert "web/static/vendor/mermaid/mermaid.min.js" in files
    uncovered = [f for f in files if not any(fnmatch(f, pattern) for pattern in globs)]
    assert uncovered == []
