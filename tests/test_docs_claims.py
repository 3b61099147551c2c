"""What the docs say about the results and the code, checked: no page promises a figure that no
results file holds, names an experiment that never ran, or types a figure by hand in its prose;
the README's rerun table, stage map and list of layers are the pipeline's and the library's;
the example outputs are what the code prints; the CHANGELOG's claims about old settings are what
the schema does. (The tables and values themselves: tests/test_docs_tables.py; commands and
links: tests/test_docs_commands.py.)
"""

from __future__ import annotations

import ast
import copy
import json
import re
from pathlib import Path

import pytest
import yaml
from markdown_it import MarkdownIt

from benchmarks import tables_format
from benchmarks.real_experiments import EXPERIMENTS
from benchmarks.results import RESULTS, load
from benchmarks.workspace import REPO
from docs import stage_graph, tables
from facetl.core.errors import FacetlError
from facetl.core.schema import RENAMES, removed_settings, task_schema, validate_params
from facetl.core.tasks import task_names

PAGES = tables.pages()
MARKDOWN = MarkdownIt("commonmark").enable("table")
GENERATED = re.compile(r"<!-- table: \w+ -->.*?<!-- end table -->|<!-- value:.*?<!-- end value -->",
                       re.DOTALL)
EXPERIMENT_NAME = re.compile(r"^(route|kp|web-half)-[\w-]+$")
# A figure in prose: a decimal number, or a number with a unit of measure.
FIGURE = re.compile(r"(?<![\w.\-/])[-+±]?\d+\.\d+(?![\w.])|"
                    r"(?<![\w.\-/])[-+±]?\d+(?:\.\d+)?\s?(?:%|px|points?|minutes?|ms|MB|GB|"
                    r"seconds|x(?!\s?\d))(?!\w)")
# Numbers in prose that are no measurement: levels, goals, thresholds and settings the text
# defines, versions. A measured figure goes in a `<!-- value: ... -->` or a table instead.
NOT_MEASURED = {
    "95%": "the level of every interval", "90%": "a share of photos answered (coverage)",
    "100%": "all photos answered", "2%": "the ECE goal", "10%": "NME's failure threshold",
    "0.9": "a --min-confidence in an example", "0.5": "the decision threshold",
    "0.001": "a p-value threshold", "300 px": "an input size setting",
    "224 px": "an input size setting", "150 px": "dlib's chip size (an input size setting)",
    "50 px": "an input size setting (the small scratch CNN)",
    "30%": "a goal (share of peak)", "25%": "a goal (share of peak)",
    "68 points": "the landmark scheme", "3.11": "Python",
    "3.13": "Python", "1.0": "a version or a setting", "7.0": "a CUDA compute capability",
    "8.0": "a CUDA compute capability", "0.25": "a setting (face margin)",
    "75%": "JAX's default share of GPU memory", "0.004": "a setting (weight decay)",
}
# Pages whose every prose number is a setting's default, checked against params.yaml below.
SETTINGS_PAGE = REPO / "docs/settings.md"
# Typed figures on pages other issues own, listed so that the list can only shrink.
PENDING = {"backends-gpu.md": {"0.9999", "50%"}, "serve.md": {"0.01", "0.55", "0.99", "20%"}}


def page_id(page: Path) -> str:
    return str(page.relative_to(REPO))


def prose(text: str) -> list[str]:
    """The text of a page's prose and table cells: no code, no generated region."""
    found = []
    for token in MARKDOWN.parse(GENERATED.sub("", text)):
        if token.type == "inline":
            found += [child.content for child in token.children if child.type == "text"]
    return found


def code_spans(text: str) -> list[str]:
    """Every inline code span and every word of a code block."""
    found = []
    for token in MARKDOWN.parse(text):
        if token.type == "inline":
            found += [child.content for child in token.children if child.type == "code_inline"]
        elif token.type in ("fence", "code_block"):
            found += token.content.split()
    return found


def result_keys() -> set[str]:
    return {key for path in RESULTS.glob("*.json")
            for key in json.loads(path.read_text())["entries"]}


# --- figures ---------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_no_page_promises_a_figure_that_no_results_file_holds(page):
    text = page.read_text()
    for match in tables.MARKER.finditer(text):
        rendered = tables.TABLES[match.group(2)](load)
        assert tables_format.NOT_MEASURED not in rendered, f"table {match.group(2)}: {rendered}"
    assert tables_format.NOT_MEASURED.lower() not in text.lower()
    tables.render(text)  # a value no results file holds raises


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_experiment_a_page_names_has_results(page):
    named = {word.strip("`,.;:()") for word in code_spans(page.read_text())}
    experiments = {name for name in named if name in EXPERIMENTS or EXPERIMENT_NAME.match(name)}
    assert not experiments - result_keys(), f"named, never measured: {experiments - result_keys()}"


def typed_figures(text: str) -> set[str]:
    return {match.group(0) for line in prose(text) for match in FIGURE.finditer(line)
            if match.group(0) not in NOT_MEASURED}


@pytest.mark.parametrize("page", [p for p in PAGES if p != SETTINGS_PAGE], ids=page_id)
def test_no_figure_is_typed_by_hand_in_prose(page):
    typed = typed_figures(page.read_text())
    assert typed == PENDING.get(page.name, set()), (
        f"figures typed by hand: {sorted(typed)}: generate them (docs/tables.py: a table, or "
        "<!-- value: ... -->), or add a constant that is no measurement to NOT_MEASURED")


def params_values() -> dict[str, object]:
    """Every leaf of params.yaml by its dotted name."""
    flat = {}

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        flat[prefix.rstrip(".")] = node

    walk(yaml.safe_load((REPO / "params.yaml").read_text()), "")
    return flat


def test_the_settings_page_defaults_are_params_yaml():
    """Each row `| `key` | default | ...` under a `## section` heading: some param of that
    section whose name ends in the key has that default."""
    flat, section, wrong = params_values(), "", []
    for line in SETTINGS_PAGE.read_text().splitlines():
        if line.startswith("## "):
            section = line[3:].split()[0]
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if not (line.startswith("| `") and len(cells) >= 3) or section in ("Environment",):
            continue
        key = cells[0].strip("`")
        defaults = [cell.strip("`") for cell in cells[1:-1]]
        candidates = {name: value for name, value in flat.items()
                      if name == key or name.endswith("." + key)}
        for shown in defaults:
            if "`" in shown or shown in ("", "—"):
                continue  # several values in words: read by a person, not here
            expected = yaml.safe_load(shown)
            if isinstance(expected, str) and " " in expected:
                continue  # a default in words ("the chapter's CSV URL")
            if candidates and expected is not None and not any(
                    value == expected or str(value) == str(expected)
                    for value in candidates.values()):
                wrong.append(f"{section}: {key} = {shown}, params.yaml: {candidates}")
    assert not wrong


# --- the README against the pipeline and the library ----------------------------------------


def readme() -> str:
    return (REPO / "README.md").read_text()


def table_rows(text: str, header: str) -> list[list[str]]:
    lines = text[text.index(header):].splitlines()[2:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_the_readme_says_what_each_change_reruns():
    rows = table_rows(readme(), "| change | reruns |")
    assert rows
    for change, listed in rows:
        keys = re.findall(r"-S ([\w.]+)=", change)
        assert keys, change
        expected = set().union(*(stage_graph.reruns(key) for key in keys))
        assert set(re.findall(r"`(\w+)`", listed)) == expected, change


def test_the_stage_map_names_each_stages_module_and_outputs():
    rows = table_rows(readme(), "| stage | module")
    stages = stage_graph.stages()
    assert {row[0].split(",")[0].strip("`").split("@")[0] for row in rows} == {
        name.split("@")[0] for name in stages}
    for stage_cell, module, writes in rows:
        name = stage_cell.split(",")[0].strip("`").split("@")[0]
        stage = next(s for label, s in stages.items() if label.split("@")[0] == name)
        script = (REPO / "stages" / f"{name}.py").read_text()
        dotted = module.strip("`").removesuffix(".py").replace("/", ".")
        assert f"from facetl.{dotted} import main" in script, name
        for path in re.findall(r"`((?:data|metrics|plots|models)/[^`]*)`", writes):
            path = (path.rstrip("/").replace("<backbone>", "vgg16").replace("<name>", "large")
                    .rstrip("*"))
            assert any(stage_graph.feeds(out, path) for out in stage["outs"]), (name, path)


def test_the_readme_names_every_layer_of_the_library():
    text = readme()
    paragraph = text[text.index("The library (`src/facetl/`)"):]
    paragraph = paragraph[:paragraph.index("\n\n")]
    library = REPO / "src/facetl"
    layers = {f"{p.name}/" for p in library.iterdir() if (p / "__init__.py").is_file()}
    modules = {p.name for p in library.glob("*.py")} - {"__init__.py", "__main__.py"}
    named = set(re.findall(r"`([\w.]+/?)`", paragraph))
    assert layers | modules <= named, f"not named: {(layers | modules) - named}"


# --- example outputs ------------------------------------------------------------------------

ERROR_LINE = re.compile(r"^error: params\.yaml: ([\w.]+) = (.+?): (.+)$")


def example_errors() -> list[tuple[Path, str]]:
    return [(page, line) for page in PAGES for token in MARKDOWN.parse(page.read_text())
            if token.type in ("fence", "code_block")
            for line in token.content.splitlines() if ERROR_LINE.match(line)]


def test_the_docs_show_example_errors():
    assert example_errors()


@pytest.mark.parametrize(("page", "line"), example_errors(),
                         ids=lambda item: item.name if isinstance(item, Path) else "")
def test_an_example_error_is_what_the_schema_says(page, line):
    key, shown, _ = ERROR_LINE.match(line).groups()
    params = copy.deepcopy(yaml.safe_load((REPO / "params.yaml").read_text()))
    node = params
    *parents, leaf = key.split(".")
    for part in parents:
        node = node[part]
    node[leaf] = ast.literal_eval(shown)
    with pytest.raises(FacetlError) as error:
        validate_params(params)
    assert f"error: {error.value}" == line


def json_examples(text: str) -> list[list[dict]]:
    return [json.loads(token.content) for token in MARKDOWN.parse(text)
            if token.type in ("fence", "code_block") and token.content.lstrip().startswith("[{")]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from tests.tiny_pipeline import trained_gender
    return trained_gender(tmp_path_factory.mktemp("readme_example"))


def test_the_readme_predict_example_has_what_predict_prints(trained, monkeypatch, capsys):
    from facetl import cli
    (example,) = json_examples(readme())
    monkeypatch.chdir(trained)
    cli.main(["predict", "--task", "gender", "--json", str(trained / "source/images")])
    printed = json.loads(capsys.readouterr().out)[0]
    shown = example[0]
    assert list(shown) == list(printed)
    assert {key: type(value) for key, value in shown.items()} == {
        key: type(value) for key, value in printed.items()}
    statuses = re.findall(r"`(\w+)` \(", readme()[readme().index("- `face`: how"):][:600])
    assert shown["face"] in statuses and printed["face"] in statuses


# --- the CHANGELOG --------------------------------------------------------------------------


def changelog() -> str:
    return (REPO / "CHANGELOG.md").read_text()


def test_the_changelog_says_which_old_keys_the_schema_names():
    preamble = changelog().split("## Unreleased")[0]
    said = {key for key in re.findall(r"`([\w.]+)`", preamble)
            if "." in key and not key.endswith((".yaml", ".md"))}
    assert said == set(RENAMES) | set(removed_settings(map(task_schema, task_names())))


def test_every_renamed_param_is_gone_and_its_new_name_exists():
    flat = params_values()
    renamed = re.findall(r"^- ([a-z_.]+) -> `?([a-z_.]+)`?:", changelog(), re.MULTILINE)
    renamed += [(old, new) for old, new in re.findall(
        r"^\| params `([\w.]+)`[^|]*\| `([\w.]+)\.?\*?`", changelog(), re.MULTILINE)]
    assert renamed
    for old, new in renamed:
        assert old not in flat, old
        if new.split(".")[0] in flat:
            assert new.rstrip(".") in flat, new


# --- metric files -----------------------------------------------------------------------------

# (page, the heading of the section that lists a metrics file's keys, the code that writes them)
METRIC_LISTS = [("docs/keypoints.md", "## Evaluation", "src/facetl/keypoints"),
                ("docs/training.md", "## Calibration", "src/facetl")]


@pytest.mark.parametrize(("page", "heading", "code"), METRIC_LISTS, ids=lambda x: str(x))
def test_every_metric_a_page_lists_is_written_by_the_code(page, heading, code):
    text = (REPO / page).read_text()
    section = text[text.index(heading):]
    section = section[:section.index("\n## ", 1)] if "\n## " in section[1:] else section
    listed = set(re.findall(r"^- `(\w+)`", section, re.MULTILINE))
    listed |= set(re.findall(r"^  \(`(\w+)`", section, re.MULTILINE))
    assert listed
    source = "".join(path.read_text() for path in (REPO / code).rglob("*.py"))
    assert not {key for key in listed if f'"{key}"' not in source}
