"""Copies the web UI's JavaScript libraries from node_modules into the package.

Run it from the repository's root after changing a version in package.json (then
``npm install`` to update package-lock.json, and ``npm ci``)::

    .venv/bin/python scripts/vendor_web.py

It copies each file the UI loads, with its package's licence, into
``src/workflows4py/web/static/vendor/<package>/`` and writes
``src/workflows4py/web/static/vendor/manifest.json`` (package, version, file, sha256 of each
copied file). The copies are committed, so a clone and the wheel hold them and nothing needs
Node.js at run time; tests/test_web_ui_assets.py checks the manifest against
package-lock.json and the files' hashes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"
VENDOR = ROOT / "src" / "workflows4py" / "web" / "static" / "vendor"

FILES: dict[str, tuple[str, ...]] = {
    "mermaid": ("dist/mermaid.min.js",),
    "bpmn-js": (
        "dist/bpmn-navigated-viewer.production.min.js",
        "dist/assets/diagram-js.css",
        "dist/assets/bpmn-js.css",
    ),
}
"""The files of each package the UI loads, as paths inside the package."""


def locked_version(package: str) -> str:
    """The version package-lock.json pins for ``package``."""
    lock = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))
    version: str = lock["packages"][f"node_modules/{package}"]["version"]
    return version


def sha256(path: Path) -> str:
    """The hex SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def vendor() -> list[dict[str, str]]:
    """Copies the files and licences; the manifest's entries."""
    entries: list[dict[str, str]] = []
    for package, files in FILES.items():
        source = NODE_MODULES / package
        installed = json.loads((source / "package.json").read_text(encoding="utf-8"))["version"]
        if installed != locked_version(package):
            raise SystemExit(
                f"{package} {installed} is installed but package-lock.json pins "
                f"{locked_version(package)}: run npm ci first"
            )
        target = VENDOR / package
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for name in (*files, "LICENSE"):
            copied = target / Path(name).name
            shutil.copyfile(source / name, copied)
            entries.append(
                {
                    "package": package,
                    "version": installed,
                    "file": copied.relative_to(VENDOR).as_posix(),
                    "sha256": sha256(copied),
                }
            )
    return entries


def main() -> None:
    if not NODE_MODULES.is_dir():
        sys.exit(f"{NODE_MODULES} is missing: run npm ci first")
    entries = vendor()
    manifest = VENDOR / "manifest.json"
    manifest.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
    for entry in entries:
        print(f"{entry['package']} {entry['version']}: {entry['file']}")


if __name__ == "__main__":
    main()
