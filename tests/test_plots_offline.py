"""`dvc plots show` must write a page that renders with no network (vendored vega, inlined).

The project's `.dvc/config` points `plots.html_template` at `.dvc/plots/offline/template.html`,
which inlines pinned vega / vega-lite / vega-embed builds. These tests run the real `dvc` on a
throwaway repository that has only that config and that folder, and inspect the page it writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from configobj import ConfigObj

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = ROOT / ".dvc" / "plots" / "offline"
MANIFEST = json.loads((OFFLINE / "manifest.json").read_text(encoding="utf-8"))["packages"]
DVC = Path(sys.executable).with_name("dvc")
# Distinctive values, so finding them in the page means the plot's data was embedded.
ROWS = [(0, 0.731923), (1, 0.512846), (2, 0.418377)]


class Scripts(HTMLParser):
    """Every <script>: its src attribute (or None) and its inline text."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str | None, str]] = []
        self._src: str | None = None
        self._text: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self._src, self._text = dict(attrs).get("src"), []

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "script" and self._text is not None:
            self.found.append((self._src, "".join(self._text)))
            self._text = None


def scripts(html: str) -> list[tuple[str | None, str]]:
    parser = Scripts()
    parser.feed(html)
    return parser.found


def vendored_hashes() -> dict[str, str]:
    """sha256 of each inlined build, as refresh.py recorded it (it hashes code + newline)."""
    return {name: entry["inlined_sha256"] for name, entry in MANIFEST.items()}


def inline_hashes(html: str) -> set[str]:
    return {
        hashlib.sha256((text.strip() + "\n").encode("utf-8")).hexdigest()
        for src, text in scripts(html)
        if src is None
    }


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_TERMINAL_PROMPT": "0"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=True)


def make_repo(path: Path) -> Path:
    """A fresh git + DVC repo with the project's DVC config, the offline folder and one plot."""
    path.mkdir()
    run(["git", "init", "-q"], path)
    run([str(DVC), "init", "-q"], path)
    shutil.copy2(ROOT / ".dvc" / "config", path / ".dvc" / "config")
    shutil.copytree(OFFLINE, path / ".dvc" / "plots" / "offline")
    (path / "loss.csv").write_text(
        "step,loss\n" + "".join(f"{s},{v}\n" for s, v in ROWS), encoding="utf-8"
    )
    (path / "dvc.yaml").write_text(
        "plots:\n  - Offline loss:\n      x: step\n      y:\n        loss.csv: loss\n",
        encoding="utf-8",
    )
    return path


def plots_show(repo: Path, *extra: str) -> str:
    run([str(DVC), "plots", "show", *extra], repo)
    return (repo / "dvc_plots" / "index.html").read_text(encoding="utf-8")


def test_template_is_configured_and_complete():
    config = ConfigObj(str(ROOT / ".dvc" / "config"))  # DVC's own config format
    # DVC joins a relative plots.html_template onto the .dvc folder.
    assert (ROOT / ".dvc" / config["plots"]["html_template"]) == OFFLINE / "template.html"

    template = (OFFLINE / "template.html").read_text(encoding="utf-8")
    assert "{plot_divs}" in template
    assert "{scripts}" not in template  # DVC would fill it with CDN <script src> tags
    assert '<meta charset="utf-8">' in template[:200]  # the builds contain non-ASCII text
    assert inline_hashes(template) == set(vendored_hashes().values())
    for name, entry in MANIFEST.items():
        licence = (OFFLINE / f"LICENSE.{name}").read_text(encoding="utf-8")
        assert entry["license"] == "BSD-3-Clause"
        assert "Redistribution and use in source and binary forms" in licence
        assert "Neither the name of the copyright holder" in licence


@pytest.fixture(scope="module")
def offline_page(tmp_path_factory) -> str:
    return plots_show(make_repo(tmp_path_factory.mktemp("plots") / "repo"))


def test_page_has_no_remote_scripts(offline_page):
    sources = [src for src, _ in scripts(offline_page) if src is not None]
    assert sources == []
    assert "cdn.jsdelivr.net" not in offline_page


def test_page_inlines_pinned_vega_builds(offline_page):
    assert set(vendored_hashes().values()) <= inline_hashes(offline_page)
    for entry in MANIFEST.values():  # each build carries its version as a string literal
        assert f'="{entry["version"]}"' in offline_page


def test_page_embeds_plot_data(offline_page):
    assert "vegaEmbed('#" in offline_page
    for step, value in ROWS:
        assert str(value) in offline_page, (step, value)


def test_default_template_would_use_the_cdn(tmp_path):
    """Control: with the setting removed, DVC writes CDN script tags and none of the builds."""
    repo = make_repo(tmp_path / "repo")
    run([str(DVC), "config", "--unset", "plots.html_template"], repo)
    page = plots_show(repo)
    assert any(src and src.startswith("https://") for src, _ in scripts(page))
    assert not set(vendored_hashes().values()) & inline_hashes(page)
