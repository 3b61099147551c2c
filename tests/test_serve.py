"""`facetl serve`: the answers are `facetl predict --json`'s, 8 clients at once are answered,
bad uploads get a 4xx with the reason while the server keeps serving, a failure of its own is
a JSON 500 with the reason, a POST from another site's page is refused, the models load once,
and the page draws the answer (and says what its probability means) in a real headless Chromium.

Tiny models trained here: gender behind the face front end (so a real face gets a box), the
chapter's keypoint recipe; the server runs in this process on a free port of 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image
from skimage import data

from benchmarks.odd_inputs import png_bomb
from facetl import cli, serve
from facetl.gender import predict as gender_predict
from tests.conftest import encode
from tests.test_keypoints_pipeline import tiny_params as keypoint_params
from tests.tiny_pipeline import UP_TO_EVALUATE, keypoint_stages_run, run_gender_stages, tiny_params

MAX_BYTES = 1 << 20  # the test server's upload limit
BOX = (0, 255, 0)  # the page's colours (src/facetl/static/index.html)
UNCERTAIN = (0, 170, 255)
POINT = (255, 0, 255)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    """models/gender (aligned faces, so a real face has a box) and models/keypoints."""
    root = tmp_path_factory.mktemp("serve")
    gender, keypoints = root / "gender_run", root / "keypoints_run"
    gender.mkdir()
    before = Path.cwd()
    os.chdir(gender)
    try:
        tiny_params(gender, {"faces.align": True})
        run_gender_stages(UP_TO_EVALUATE)
    finally:
        os.chdir(before)
    keypoints.mkdir()
    with keypoint_stages_run(keypoints, keypoint_params):
        pass
    for task, run in (("gender", gender), ("keypoints", keypoints)):
        shutil.copytree(run / "models" / task, root / "models" / task)
    return root / "models"


@pytest.fixture(scope="module")
def photos(models: Path) -> dict[str, Path]:
    """The astronaut (one real face) and seven synthetic photos, as files."""
    folder = models.parent / "photos"
    folder.mkdir()
    (folder / "astronaut.jpg").write_bytes(encode(data.astronaut(), "JPEG"))
    synthetic = sorted((models.parent / "gender_run/source/images").glob("*.jpg"))[:7]
    for photo in synthetic:
        shutil.copy(photo, folder / photo.name)
    return {path.name: path for path in sorted(folder.iterdir())}


class Running:
    """A waitress server for `app` on a free port of 127.0.0.1, in a thread."""

    def __init__(self, app) -> None:
        self.server = serve.make_server(app, "127.0.0.1", 0, MAX_BYTES)
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()
        self.server.task_dispatcher.shutdown()


@pytest.fixture(scope="module")
def loads(models: Path):
    """How many times the gender model was read from disk while the server ran."""
    calls = []
    original = gender_predict.load_task_model

    def counting(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    gender_predict.load_task_model = counting
    try:
        yield calls
    finally:
        gender_predict.load_task_model = original


@pytest.fixture(scope="module")
def server(models: Path, loads):
    app = serve.create_app(serve.Service(models), MAX_BYTES)
    with Running(app) as running:
        yield running.url


def post(url: str, files: list[tuple[str, bytes]], **query: str) -> requests.Response:
    return requests.post(f"{url}/predict", params=query, timeout=120,
                         files=[("image", (name, body)) for name, body in files])


def cli_json(capsys, *args: str) -> list[dict]:
    cli.main(["predict", "--json", *args])
    return json.loads(capsys.readouterr().out)


def named(results: list[dict]) -> list[dict]:
    """The CLI's entries named as the server names them: by the file's name alone."""
    return [result | {"image": Path(result["image"]).name} for result in results]


@pytest.mark.parametrize("flags", [{}, {"all_faces": "1", "min_confidence": "0.9"},
                                   {"task": "keypoints"}, {"task": "all"}])
def test_the_answer_is_facetl_predicts_json(server, models, photos, capsys, flags):
    files = [photos["astronaut.jpg"], *list(photos.values())[1:3]]
    cli_flags = [f"--{key.replace('_', '-')}" + ("" if key == "all_faces" else f"={value}")
                 for key, value in flags.items()]
    expected = named(cli_json(capsys, "--models", str(models), *cli_flags, *map(str, files)))
    answer = post(server, [(file.name, file.read_bytes()) for file in files], **flags)
    assert answer.status_code == 200, answer.text
    assert answer.json() == expected
    if flags.get("all_faces"):  # the real face was found, with a box inside the photo
        face = answer.json()[0]
        assert face["face"] == "found" and face["all_faces"][0]["box"] is not None


def test_eight_clients_at_once_each_get_their_own_answer(server, models, photos, capsys):
    assert len(photos) == 8
    expected = named(cli_json(capsys, "--models", str(models), "--task", "all", "--all-faces",
                              *map(str, photos.values())))
    start = threading.Barrier(8)

    def client(path: Path) -> requests.Response:
        start.wait()  # all eight requests in flight together
        return post(server, [(path.name, path.read_bytes())], task="all", all_faces="1")

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(client, photos.values()))
    assert [answer.status_code for answer in answers] == [200] * 8
    # One photo per request here, eight in one batch for the CLI: the network's float rounding
    # may differ by batch size, by a unit in the last printed place; another client's answer
    # would differ by far more (other boxes, points, probabilities).
    for answer, wanted in zip(answers, expected, strict=True):
        assert_same_answer(answer.json()[0], wanted, tolerance=0.011)


def assert_same_answer(got: object, wanted: object, tolerance: float, where: str = "") -> None:
    """Equal structure and strings; numbers within `tolerance`."""
    if isinstance(wanted, dict):
        assert isinstance(got, dict) and got.keys() == wanted.keys(), where
        for key in wanted:
            assert_same_answer(got[key], wanted[key], tolerance, f"{where}.{key}")
    elif isinstance(wanted, list):
        assert isinstance(got, list) and len(got) == len(wanted), where
        for i, (a, b) in enumerate(zip(got, wanted, strict=True)):
            assert_same_answer(a, b, tolerance, f"{where}[{i}]")
    elif isinstance(wanted, float):
        assert got == pytest.approx(wanted, abs=tolerance), where
    else:
        assert got == wanted, where


def oversized() -> bytes:
    """A real PNG over the test server's 1 MiB limit (noise does not compress)."""
    noise = np.random.default_rng(0).integers(0, 256, (700, 700, 3), dtype=np.uint8)
    return encode(noise, "PNG")


def wide_bomb() -> bytes:
    """12000 x 12000 pixels: over Image.MAX_IMAGE_PIXELS (1e8) but under twice it, where PIL
    only warns and would decode 432 MB."""
    return png_bomb(12_000, 12_000)


BAD_UPLOADS = {
    "empty": (lambda samples: b"", 400, "empty file"),
    "not_an_image": (lambda samples: samples["html"], 415, "not an image"),
    "not_a_photo_format": (lambda samples: encode(data.astronaut(), "PPM"), 415, "not an image"),
    "bomb": (lambda samples: samples["bomb_png"], 413, "decompression bomb"),
    "wide_bomb": (lambda samples: wide_bomb(), 413, "over the limit of 100,000,000"),
    "over_the_size_limit": (lambda samples: oversized(), 413, "over the limit of 1,048,576"),
    "truncated": (lambda samples: samples["truncated_jpeg"], 422, "truncated"),
}


@pytest.mark.parametrize("kind", BAD_UPLOADS)
def test_a_bad_upload_gets_a_4xx_with_its_reason_and_the_server_keeps_serving(
        server, photos, samples, kind):
    make, status, reason = BAD_UPLOADS[kind]
    good = photos["astronaut.jpg"].read_bytes()
    answer = post(server, [("ok.jpg", good), (f"{kind}.png", make(samples))])
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert reason in error and (kind == "over_the_size_limit" or f"{kind}.png" in error)
    again = post(server, [("ok.jpg", good)])
    assert again.status_code == 200 and again.json()[0]["image"] == "ok.jpg"


@pytest.mark.parametrize(("query", "reason"), [
    ({"task": "age"}, "task=age"),
    ({"all_faces": "maybe"}, "all_faces=maybe"),
    ({"min_confidence": "high"}, "min_confidence=high"),
    ({"min_confidence": "0.3"}, "0.3"),
    ({"task": "keypoints", "all_faces": "1"}, "all_faces applies to gender"),
    ({"overlay": "out"}, "unknown query parameter 'overlay'"),  # writes files: CLI only
    ({"colour": "1"}, "unknown query parameter 'colour'"),
])
def test_a_bad_query_gets_a_400_with_its_reason(server, photos, query, reason):
    answer = post(server, [("ok.jpg", photos["astronaut.jpg"].read_bytes())], **query)
    assert answer.status_code == 400 and reason in answer.json()["error"]


def test_a_request_without_a_photo_is_refused(server):
    answer = requests.post(f"{server}/predict", timeout=30, data={"photo": "x"})
    assert answer.status_code == 400 and "multipart field 'image'" in answer.json()["error"]


def test_a_failure_of_the_server_itself_is_a_json_500_with_the_reason(server, photos,
                                                                      monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug in the model code")

    good = [("ok.jpg", photos["astronaut.jpg"].read_bytes())]
    monkeypatch.setattr(serve.predict, "predict", broken)
    answer = post(server, good)
    assert answer.status_code == 500 and answer.headers["Content-Type"] == "application/json"
    error = answer.json()["error"]
    assert "ZeroDivisionError: a bug in the model code" in error and "ok.jpg" in error
    monkeypatch.undo()
    assert post(server, good).status_code == 200  # the lock was let go: it still answers


@pytest.mark.parametrize(("origin", "status"), [
    ("http://attacker.example", 403), ("null", 403), ("http://127.0.0.1:1", 403),
    ("https://127.0.0.1:{port}", 403), ("http://127.0.0.1:{port}", 200), (None, 200)])
def test_a_post_from_another_sites_page_is_refused(server, photos, origin, status):
    """A browser names the page's site in `Origin`: only the server's own page may POST; curl
    and scripts send no Origin."""
    port = server.rsplit(":", 1)[1]
    headers = {"Origin": origin.format(port=port)} if origin else {}
    answer = requests.post(f"{server}/predict", headers=headers, timeout=120, files=[
        ("image", ("ok.jpg", photos["astronaut.jpg"].read_bytes()))])
    assert answer.status_code == status, answer.text
    if status == 403:
        assert f"Origin {headers['Origin']} is not this server ({server})" in \
            answer.json()["error"]


def test_a_page_whose_name_was_pointed_at_this_machine_is_refused(server, photos):
    """DNS rebinding: the attacker's page, its name now resolving to 127.0.0.1, sends its own
    name as Origin and as Host; a server on the loopback answers loopback names only."""
    port = server.rsplit(":", 1)[1]
    upload = [("image", ("ok.jpg", photos["astronaut.jpg"].read_bytes()))]
    for name, status in (("attacker.example", 403), ("localhost", 200)):
        own = f"{name}:{port}"
        answer = requests.post(f"{server}/predict", timeout=120, files=upload,
                               headers={"Origin": f"http://{own}", "Host": own})
        assert answer.status_code == status, (name, answer.text)
        if status == 403:
            assert "is not of this machine" in answer.json()["error"]


def test_the_docs_state_the_default_upload_limit_in_mib():
    default = cli.parser().parse_args(["serve"]).max_mb
    docs = (Path(__file__).parents[1] / "docs/serve.md").read_text()
    assert f"`--max-mb` is {default:g} by default" in docs
    assert "MB means MiB (1,048,576 bytes)" in docs


def test_healthz_and_the_page_need_nothing_from_outside(server):
    assert requests.get(f"{server}/healthz", timeout=30).json() == {
        "status": "ok", "tasks": ["gender", "keypoints"]}
    page = requests.get(f"{server}/", timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "http://" not in page.text and "https://" not in page.text  # no CDN, no font host


def test_the_model_is_read_from_disk_once_for_all_requests(server, photos, loads):
    assert loads  # when the server started
    before = len(loads)
    for _ in range(3):
        assert post(server, [("ok.jpg", photos["astronaut.jpg"].read_bytes())]).ok
    assert len(loads) == before


def test_serve_without_a_model_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["serve", "--port", "0", "--models", str(tmp_path)])
    assert f"no trained model in {tmp_path}" in capsys.readouterr().err


@pytest.mark.e2e
def test_memory_stays_flat_over_many_requests(models, tmp_path):
    """`facetl serve` in its own process: RSS after 200 requests (8 clients at once, bad
    uploads among them) within 20% of RSS after 10. benchmarks/serve_memory.py: 1000."""
    from benchmarks.serve_memory import astronaut_jpeg, rss_after, running_server

    with running_server(models, tmp_path / "serve.log") as (url, pid):
        figures = rss_after(url, pid, astronaut_jpeg(), [10, 200])
    assert figures["rss_mb_after_200"] <= 1.2 * figures["rss_mb_after_10"], figures


# --- the page in a real browser ------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser(tmp_path):
    """Debian's headless Chromium through its chromedriver, with a fresh profile."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("needs chromium and chromium-driver (apt-get install chromium "
                    "chromium-driver; .ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1200,900",
                 f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def canvas_pixel(driver, x: float, y: float) -> tuple[int, int, int]:
    return tuple(driver.execute_script(
        "const c = document.querySelector('.card canvas');"
        "return Array.from(c.getContext('2d').getImageData(arguments[0], arguments[1], 1, 1)"
        ".data.slice(0, 3));", round(x), round(y)))


def said(answer: dict) -> str:
    """What the page must write for an answer, worked out here from the JSON: the answer and
    its own probability, or for "uncertain" the probability named."""
    if answer["gender"] == "uncertain":
        return f"uncertain (p_male {answer['p_male']:.2f})"
    p = answer["p_male"] if answer["gender"] == "male" else 1 - answer["p_male"]
    return f"{answer['gender']} {p:.2f}"


def shown(browser, server: str, photo: Path, min_confidence: str = ""):
    """The page's card for `photo` once answered, and the canvas' labels (text and place)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server + "/")
    WebDriverWait(browser, 30).until(
        lambda d: "gender, keypoints" in d.find_element(By.ID, "status").text)
    if min_confidence:
        browser.find_element(By.ID, "min-confidence").send_keys(min_confidence)
    browser.find_element(By.ID, "file").send_keys(str(photo))
    card = WebDriverWait(browser, 120).until(lambda d: d.find_element(
        By.CSS_SELECTOR, ".card[data-state=done], .card[data-state=error]"))
    text = card.find_element(By.CLASS_NAME, "answer").text
    assert card.get_attribute("data-state") == "done", text
    canvas = card.find_element(By.TAG_NAME, "canvas")
    return card, canvas, json.loads(canvas.get_attribute("data-labels"))


def box_edges(box: list[int], scale: float, points: np.ndarray) -> list[tuple[float, float]]:
    """Points on the box's bottom, left and right sides (the label sits on the top), away
    from the keypoints drawn over it."""
    x0, y0, x1, y1 = (v * scale for v in box)
    along = np.linspace(0.2, 0.8, 7)
    edges = [*((x0 + t * (x1 - x0), y1) for t in along),
             *((x, y0 + t * (y1 - y0)) for t in along for x in (x0, x1))]
    return [(x, y) for x, y in edges if len(points) == 0
            or np.hypot(*(points - (x, y)).T).min() > 6]


def test_the_page_draws_the_answer_over_the_photo(server, photos, browser):
    from selenium.webdriver.common.by import By

    photo = photos["astronaut.jpg"]
    expected = post(server, [(photo.name, photo.read_bytes())], task="all",
                    all_faces="1").json()[0]
    card, canvas, labels = shown(browser, server, photo)
    text = card.find_element(By.CLASS_NAME, "answer").text
    assert text.startswith(said(expected) + " · "), text  # "female 0.99", not p_male's 0.01
    assert "68 keypoints" in text
    assert [label["text"] for label in labels] == [said(expected["all_faces"][0])]

    scale = float(canvas.get_attribute("data-scale"))
    assert int(canvas.get_attribute("width")) == round(512 * scale)  # the photo, drawn
    points = np.asarray(expected["keypoints"]) * scale
    clear = box_edges(expected["all_faces"][0]["box"], scale, points)
    assert len(clear) >= 5
    photo_pixels = np.asarray(Image.open(io.BytesIO(photo.read_bytes())).convert("RGB"))
    for x, y in clear:
        assert canvas_pixel(browser, x, y) == BOX
        assert tuple(photo_pixels[round(y / scale), round(x / scale)]) != BOX
    width, height = (int(canvas.get_attribute(side)) for side in ("width", "height"))
    inside = [(x, y) for x, y in points if 3 <= x < width - 3 and 3 <= y < height - 3]
    assert inside
    assert all(canvas_pixel(browser, x, y) == POINT for x, y in inside[:5])


def test_the_label_of_a_face_at_the_left_edge_stays_inside_the_picture(server, tmp_path,
                                                                       browser):
    photo = tmp_path / "left_edge.png"
    Image.fromarray(np.ascontiguousarray(data.astronaut()[:, 190:])).save(photo)
    expected = post(server, [(photo.name, photo.read_bytes())], all_faces="1").json()[0]
    assert expected["all_faces"][0]["box"][0] < 0  # the face's box starts left of the photo
    _, canvas, [label] = shown(browser, server, photo)
    width, height = (int(canvas.get_attribute(side)) for side in ("width", "height"))
    assert label["text"] == said(expected["all_faces"][0])  # whole, not cut to "e 0.99"
    assert label["x"] >= 0 and label["x"] + label["width"] <= width
    assert label["y"] >= 0 and label["y"] + label["height"] <= height
    # the text is written there, in the box's colour
    written = [canvas_pixel(browser, x, label["y"] + label["height"] / 2)
               for x in range(label["x"], label["x"] + label["width"])]
    assert sum(pixel == BOX for pixel in written) >= 3


def test_uncertain_answers_are_drawn_apart_from_sure_ones(server, photos, browser):
    from selenium.webdriver.common.by import By

    photo = photos["astronaut.jpg"]
    # at 1.0 no probability is high enough: every answer is "uncertain"
    expected = post(server, [(photo.name, photo.read_bytes())], all_faces="1",
                    min_confidence="1").json()[0]
    assert expected["gender"] == "uncertain"
    card, canvas, [label] = shown(browser, server, photo, min_confidence="1")
    assert card.find_element(By.CLASS_NAME, "answer").text.startswith(said(expected))
    assert label["text"] == said(expected) and label["text"].startswith("uncertain (p_male ")
    scale = float(canvas.get_attribute("data-scale"))
    edges = box_edges(expected["all_faces"][0]["box"], scale, np.empty((0, 2)))
    assert [canvas_pixel(browser, x, y) for x, y in edges] == [UNCERTAIN] * len(edges)
