"""Every command and link in the docs (README.md, docs/**/*.md) works as written.

In every code block, fenced or indented: `dvc ...` parses with DVC's own parser, each
`-S key=value` names a key of params.yaml, each `dvc repro` / `dvc exp run` target is a stage
DVC finds; `facetl ...` parses with the CLI's parser (subcommand, flags, choices); a script or
a repository path a command names exists. Every relative link or picture resolves, anchors to
a heading included (GitHub's slugs). A renamed key, flag, stage, file or heading breaks this
test, not the user. Paths under `../shared/` and absolute paths are the user's own: exempt.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from collections import Counter
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml
from markdown_it import MarkdownIt

from benchmarks.workspace import REPO
from facetl.cli import parser as facetl_parser

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
NOT_SHELL = {"python", "py", "yaml", "yml", "json", "toml", "csv", "tsv", "ini", "html", "mermaid",
             "text"}
OPERATORS = {"&&", "||", ";", "|", "&", "(", ")", "$", "$(", ";;"}
REPO_FOLDERS = ("benchmarks/", "stages/", "pipelines/", "tests/", "src/", "docs/")
EXEMPT = ("../shared/", "/")  # examples of the user's own paths
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
MARKDOWN = MarkdownIt("commonmark").enable("table")


# --- what a page holds ----------------------------------------------------------------------


def code_lines(text: str) -> list[tuple[int, str]]:
    """(line number, shell line) of every code block but those in a non-shell language,
    continuation lines joined onto the line they continue."""
    found = []
    for token in MARKDOWN.parse(text):
        language = token.info.strip().split(" ")[0].lower() if token.type == "fence" else ""
        if token.type not in ("fence", "code_block") or language in NOT_SHELL:
            continue
        number = token.map[0] + (2 if token.type == "fence" else 1)
        for line in token.content.replace("\\\n", "\x00").splitlines():
            found.append((number, line.replace("\x00", " ")))
            number += 1 + line.count("\x00")
    return found


def commands(line: str) -> list[list[str]]:
    """The simple commands of one shell line (`a && b | c $(d)`), comments and leading
    `$ ` prompts and `NAME=value` environment assignments dropped."""
    lexer = shlex.shlex(line.removeprefix("$ "), posix=True, punctuation_chars=True)
    lexer.whitespace_split, lexer.commenters = True, "#"
    words, current = [], []
    for word in lexer:
        if word in OPERATORS:
            words.append(current)
            current = []
        elif current or not ENV_ASSIGNMENT.match(word):
            current.append(word)
    return [command for command in [*words, current] if command]


def commands_or_none(line: str) -> list[list[str]]:
    """`commands(line)`, or none where the line is not shell (unbalanced quotes)."""
    try:
        return commands(line)
    except ValueError:
        return []


def slug(heading: str, seen: Counter) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens;
    a repeated heading gets -1, -2, ..."""
    base = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
    count = seen[base]
    seen[base] += 1
    return f"{base}-{count}" if count else base


def anchors(text: str) -> set[str]:
    """The anchors a page offers: its headings' slugs and HTML ids or names."""
    tokens, seen, found = MARKDOWN.parse(text), Counter(), set()
    for before, token in zip(tokens, tokens[1:], strict=False):
        if before.type == "heading_open":
            found.add(slug("".join(child.content for child in token.children or []
                                   if child.type in ("text", "code_inline")), seen))
        if token.type in ("html_block", "html_inline", "inline"):
            found |= set(re.findall(r"""\b(?:id|name)=["']([^"']+)["']""", token.content))
    return found


def link_targets(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every link and picture, markdown or HTML."""
    found = []
    for token in MARKDOWN.parse(text):
        line = token.map[0] + 1 if token.map else 0
        for child in [token, *(token.children or [])]:
            if child.type in ("link_open", "image"):
                found.append((line, str(child.attrs.get("href") or child.attrs.get("src"))))
            elif child.type in ("html_block", "html_inline"):
                found += [(line, target) for target in
                          re.findall(r"""\b(?:href|src)=["']([^"']+)["']""", child.content)]
    return found


# --- the checks -----------------------------------------------------------------------------


@cache
def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@cache
def dvc_repo():
    from dvc.repo import Repo

    return Repo(str(REPO))


def has_key(node: object, dotted: str) -> bool:
    """Whether `a.b.c` (list items by number) is a path through the params."""
    for key in dotted.split("."):
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return False
    return True


def parse_problem(parse, argv: list[str]) -> str | None:
    """What a command line parser says is wrong with argv (its last line), or None."""
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said), contextlib.redirect_stdout(said):
            parse(argv)
    except SystemExit as exit_:
        if exit_.code in (0, None):  # --help
            return None
    except Exception:  # DVC's parser raises its own error, having printed why
        pass
    else:
        return None
    lines = said.getvalue().strip().splitlines()
    return next((line for line in reversed(lines) if "error" in line.lower()), "does not parse")


def dvc_problems(argv: list[str]) -> list[str]:
    """DVC's parser, then for `repro` / `exp run` each `-S` key and each target."""
    from dvc.cli import parse_args

    problem = parse_problem(parse_args, argv[1:])
    if problem:
        return [problem]
    if argv[1:2] != ["repro"] and argv[1:3] not in (["exp", "run"], ["experiments", "run"]):
        return []
    args = parse_args(argv[1:])
    problems = []
    for override in getattr(args, "set_param", None) or []:
        name = override.split("=", 1)[0]
        file, _, key = name.rpartition(":")
        path = REPO / (file or "params.yaml")
        if not path.is_file():
            problems.append(f"-S {override}: no file {file}")
        elif not has_key(load_yaml(path), key):
            problems.append(f"-S {override}: {path.name} has no key {key}")
    for target in args.targets or []:
        try:
            dvc_repo().stage.collect(target)
        except Exception as error:  # StageNotFound, a missing dvc.yaml, ...
            problems.append(f"target {target}: {error}")
    return problems


def path_problems(argv: list[str]) -> list[str]:
    """Repository paths a command names, and the script python runs, exist."""
    named = [word for word in argv if word.removeprefix("./").startswith(REPO_FOLDERS)]
    named += [argv[i + 1] for i in range(len(argv) - 1) if argv[i] in ("-r", "--requirement")]
    program = Path(argv[0]).name
    if re.fullmatch(r"python3?(\.\d+)?", program):
        script = next((word for word in argv[1:] if not word.startswith("-")), "")
        if "-m" not in argv and script.endswith(".py"):
            named.append(script)
    # `tests/x.py::test_y` and `pipelines/k/dvc.yaml:stage` name the file before the colon
    return [f"{word}: no such file" for word in dict.fromkeys(named)
            if not word.startswith(EXEMPT) and not (REPO / word.split(":")[0]).exists()]


def command_problems(argv: list[str]) -> list[str]:
    problems = path_problems(argv)
    program = Path(argv[0]).name  # `.venv/bin/dvc` too
    if program == "dvc":
        problems += dvc_problems(argv)
    facetl = (argv[1:] if program == "facetl" else
              argv[3:] if argv[1:3] == ["-m", "facetl"] else None)
    if facetl is not None:
        problem = parse_problem(facetl_parser().parse_args, facetl)
        problems += [problem] if problem else []
    return problems


def page_command_problems(text: str) -> list[str]:
    problems = []
    for number, line in code_lines(text):
        argvs = commands_or_none(line)
        if not argvs and line.split()[:1] in (["dvc"], ["facetl"]):
            problems.append(f"line {number}: {line.strip()}: unbalanced quotes")
        problems += [f"line {number}: {shlex.join(argv)}: {problem}"
                     for argv in argvs for problem in command_problems(argv)]
    return problems


def page_link_problems(text: str, page: Path) -> list[str]:
    problems = []
    for number, href in link_targets(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", href) or href.startswith(EXEMPT):
            continue  # a URL (https:, mailto:) or the user's own path
        path, _, anchor = unquote(href).partition("#")
        target = (page.parent / path) if path else page
        if path and not target.exists():
            problems.append(f"line {number}: link {href}: no file {target}")
        elif anchor and target.suffix == ".md":
            offered = anchors(text if target == page else target.read_text())
            if anchor not in offered:
                problems.append(f"line {number}: link {href}: no heading #{anchor} in "
                                f"{target.name}")
    return problems


# --- the real pages -------------------------------------------------------------------------


def name(page: Path) -> str:
    return str(page.relative_to(REPO))


@pytest.mark.parametrize("page", PAGES, ids=name)
def test_every_command_on_the_page_is_valid(page):
    problems = page_command_problems(page.read_text())
    assert not problems, f"{name(page)}:\n" + "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=name)
def test_every_link_on_the_page_resolves(page):
    problems = page_link_problems(page.read_text(), page)
    assert not problems, f"{name(page)}:\n" + "\n".join(problems)


def test_the_docs_have_commands_to_check():
    """The checks above see the commands (a parser that found none would pass anything)."""
    argvs = [argv for page in PAGES for _, line in code_lines(page.read_text())
             for argv in commands_or_none(line)]
    overrides = [word for argv in argvs if argv[0] == "dvc" for word in argv if "=" in word]
    assert len(overrides) >= 5, overrides
    assert any(argv[:2] == ["facetl", "predict"] for argv in argvs)
    assert any(argv[:2] == ["dvc", "repro"] for argv in argvs)


# --- the checker, proven on a synthetic page ------------------------------------------------

FIRST_STAGE = next(iter(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]))
GOOD = f"""# Quick start

Read [the other page](other.md#a-heading-with-code--more), [this one](#quick-start),
[a folder](.) and ![a picture](picture.png); the user's [own file](../shared/x.md).

    python3 -m venv .venv && .venv/bin/pip install -r requirements.txt -e .
    dvc repro {FIRST_STAGE}    # a stage name
    dvc exp run pipelines/keypoints/dvc.yaml -S backbone=vgg16,mobilenet_v2 \\
      -S params.yaml:faces.align=false -S data.gender.source=../shared/labels.csv
    KERAS_BACKEND=jax facetl predict --task keypoints --json photo.jpg 'more/*.jpg'

## Tests

```bash
PYTHONPATH=. python -m pytest tests/test_docs_commands.py::test_x && facetl report --out r
python tests/test_docs_commands.py /abs/input.csv
dvc plots diff $(dvc exp ls --name-only)
```

```yaml
dvc exp run -S not.a.key=1   # YAML, not a command
```
"""


@pytest.fixture
def folder(tmp_path) -> Path:
    """A page's folder: the page another links to, and a picture."""
    (tmp_path / "other.md").write_text("# Intro\n\n## A heading: with `code` & more\n")
    (tmp_path / "picture.png").write_bytes(b"\x89PNG")
    return tmp_path


def test_a_good_page_has_no_problems(folder):
    assert page_command_problems(GOOD) == []
    assert page_link_problems(GOOD, folder / "page.md") == []


def test_every_command_of_a_page_is_seen():
    argvs = [argv for _, line in code_lines(GOOD) for argv in commands_or_none(line)]
    assert [argv[:2] for argv in argvs] == [
        ["python3", "-m"], [".venv/bin/pip", "install"], ["dvc", "repro"], ["dvc", "exp"],
        ["facetl", "predict"], ["python", "-m"], ["facetl", "report"],
        ["python", "tests/test_docs_commands.py"], ["dvc", "plots"], ["dvc", "exp"]]
    assert argvs[3][-1] == "data.gender.source=../shared/labels.csv"  # continuation joined


@pytest.mark.parametrize(("good", "bad", "expected"), [
    ("-S backbone=vgg16,", "-S train.epochs=3,", "params.yaml has no key train.epochs"),
    ("-S params.yaml:faces.align", "-S other.yaml:faces.align", "no file other.yaml"),
    (f"dvc repro {FIRST_STAGE}", "dvc repro no_such_stage", "target no_such_stage"),
    ("run pipelines/keypoints/dvc.yaml", "run pipelines/nope/dvc.yaml", "pipelines/nope"),
    ("dvc exp run pipelines", "dvc exp run --no-such-flag pipelines", "--no-such-flag"),
    ("predict --task keypoints", "predict --tasks keypoints", "unrecognized arguments"),
    ("predict --task keypoints", "predict --task age", "invalid choice: 'age'"),
    ("facetl report", "facetl explain", "invalid choice: 'explain'"),
    ("pytest tests/test_docs_commands.py::", "pytest tests/test_no_such.py::",
     "tests/test_no_such.py::test_x: no such file"),
    ("python tests/test_docs_commands.py", "python bench.py", "bench.py: no such file"),
    ("-r requirements.txt", "-r requirements-nope.txt", "requirements-nope.txt: no such"),
    ("ls --name-only", "ls --only-names", "--only-names"),
])
def test_a_wrong_command_is_caught(good, bad, expected):
    assert GOOD.count(good) >= 1
    problems = page_command_problems(GOOD.replace(good, bad, 1))
    assert any(expected in problem for problem in problems), problems


def test_a_wrong_key_on_a_continuation_line_names_the_command_line():
    page = GOOD.replace("faces.align=false", "faces.aligned=false")
    [problem] = page_command_problems(page)
    assert problem.startswith("line 8:") and "no key faces.aligned" in problem
    assert page.splitlines()[7].strip().startswith("dvc exp run pipelines/keypoints")


@pytest.mark.parametrize(("good", "bad", "expected"), [
    ("(other.md#", "(others.md#", "no file"),
    ("#a-heading-with-code--more", "#a-heading-with-code-more", "no heading"),
    ("(#quick-start)", "(#tests-1)", "no heading #tests-1 in page.md"),
    ("(picture.png)", "(picture.jpg)", "picture.jpg"),
    ("(.)", "(missing/)", "missing/"),
])
def test_a_broken_link_is_caught(folder, good, bad, expected):
    problems = page_link_problems(GOOD.replace(good, bad, 1), folder / "page.md")
    assert len(problems) == 1 and expected in problems[0], problems


def test_slugs_follow_github():
    page = "# Speed & memory\n\n## `faces.crop_size`: why not `size`?\n\n# Speed & memory\n"
    assert anchors(page) == {"speed--memory", "facescrop_size-why-not-size",
                             "speed--memory-1"}
