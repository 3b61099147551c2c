"""`facetl serve`: the trained models behind HTTP, and a page to try them.

`POST /predict` takes one or more photos (multipart field `image`) and answers with the JSON of
`facetl predict --json`, from the same code: each upload is checked from its bytes and header
alone (empty, not an image, too many pixels, over the size limit: a 4xx with the reason), then
the photos are written to a temporary folder and go through `facetl.predict.predict` with the
models loaded once, at start. `GET /` is a page that draws the answers over the photos;
`GET /healthz` says which models are loaded.

Flask on waitress: inference is blocking CPU work (Keras, dlib) that gains nothing from an
event loop; waitress (pure Python, no dependencies, Linux, macOS and Windows) reads each whole
request before a worker thread sees it, so slow clients hold no worker, and it and Flask both
refuse a body over the limit before it is parsed. One prediction runs at a time (a lock):
neither Keras's `predict` nor dlib's detectors promise to be safe from several threads, and one
prediction already uses the cores TensorFlow has; the other requests wait their turn.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import tempfile
import threading
import warnings
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from PIL import Image, UnidentifiedImageError

from facetl import predict
from facetl.core.errors import FacetlError
from facetl.core.tasks import Option, default_task, task_options

log = logging.getLogger(__name__)
TASKS = predict.TASKS
MAX_FILES = 32  # photos in one request
MULTIPART_SLACK = 64 * 1024  # boundaries and part headers on top of the photos' bytes
TRUE, FALSE = {"1", "true", "yes", "on"}, {"", "0", "false", "no", "off"}
# Photo formats only: PIL also opens EPS (through Ghostscript), PSD, ICNS..., attack surface
# an upload has no need of. (JPEG's opener also reads the MPO files of many cameras.)
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")
Image.init()  # registers every plugin: `Image.open(formats=...)` knows only those registered


class BadRequest(Exception):
    """An upload or a query the service refuses (4xx), or a failure of its own (500): the
    HTTP status and the reason, one line."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def check_upload(name: str, data: bytes) -> None:
    """Refuse, from the bytes and the image header alone (no pixel decoded yet), an upload that
    predict could not read or that would fill memory once decoded."""
    if not data:
        raise BadRequest(400, f"{name}: empty file")
    try:
        with warnings.catch_warnings():  # the pixel count is checked below, with a reason
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as image:
                width, height = image.size
    except Image.DecompressionBombError as exc:
        raise BadRequest(413, f"{name}: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise BadRequest(415, f"{name}: not an image in an accepted format (JPEG, PNG, WebP, "
                              "BMP, GIF, TIFF)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadRequest(400, f"{name}: cannot read the image header ({exc})") from exc
    if width * height > Image.MAX_IMAGE_PIXELS:
        raise BadRequest(413, f"{name}: {width} x {height} pixels is over the limit of "
                              f"{Image.MAX_IMAGE_PIXELS:,} (a decompression bomb?)")


def parse_option(option: Option, value: str) -> Any:
    """A query parameter's text as its option's value: a flag's 1 or 0, else its type's."""
    if option.value_type is bool:
        if value.lower() not in TRUE | FALSE:
            raise BadRequest(400, f"{option.name}={value}: expected 1 or 0 (true or false)")
        return value.lower() in TRUE
    try:
        return option.value_type(value)
    except ValueError as exc:
        raise BadRequest(400, f"{option.name}={value}: expected {option.expects}") from exc


class Service:
    """The models, loaded once, and the answer to one request's photos."""

    def __init__(self, models_root: Path) -> None:
        self.models_root = models_root
        present = [task for task in TASKS if (models_root / task / "model.keras").is_file()]
        if not present:
            raise FacetlError(f"no trained model in {models_root} (need "
                              f"{' or '.join(str(models_root / task) for task in TASKS)}); run "
                              "`dvc repro` first, or pass --models DIR")
        self.loaded = predict.load_models(present, models_root)
        self.lock = threading.Lock()

    def options(self, query: dict[str, str]) -> tuple[list[str], dict[str, Any]]:
        """The tasks the query asks for (`task`), and the values of the tasks' own options
        (each as `facetl predict`'s, less those that write files)."""
        served = [option for _, option in task_options() if option.served]
        known = ["task", *(option.name for option in served)]
        unknown = set(query) - set(known)
        if unknown:
            raise BadRequest(400, f"unknown query parameter {sorted(unknown)[0]!r}: expected "
                                  f"{', '.join(known)}")
        task = query.get("task", default_task())
        if task not in (*TASKS, "all"):
            raise BadRequest(400, f"task={task}: expected one of {', '.join(TASKS)}, all")
        tasks = list(self.loaded) if task == "all" else [task]
        if tasks[0] not in self.loaded:
            raise BadRequest(400, f"task={task}: no {task} model is loaded (none in "
                                  f"{self.models_root / task} when the server started)")
        options = {option.name: parse_option(option, query[option.name])
                   for option in served if option.name in query}
        if found := predict.misplaced(tasks, options):
            owner, option = found
            raise BadRequest(400, f"{option.name} applies to {owner}: use it with task={owner} "
                                  "(or all)")
        return tasks, options

    def answer(self, uploads: list[tuple[str, bytes]], query: dict[str, str]) -> list[dict]:
        """`facetl predict --json`'s entries for the uploads, each named by its file name."""
        tasks, options = self.options(query)
        if not uploads:
            raise BadRequest(400, "no photo: send one or more files in the multipart field "
                                  "'image'")
        if len(uploads) > MAX_FILES:
            raise BadRequest(413, f"{len(uploads)} photos in one request: at most {MAX_FILES}")
        for name, data in uploads:
            check_upload(name, data)
        with tempfile.TemporaryDirectory(prefix="facetl-serve-") as folder:
            files = [str(Path(folder) / str(number)) for number in range(len(uploads))]
            for file, (_, data) in zip(files, uploads, strict=True):
                Path(file).write_bytes(data)
            with self.lock:
                try:
                    results = predict.predict(tasks, files, self.models_root, options,
                                              loaded=self.loaded)
                except FacetlError as exc:
                    raise BadRequest(400, str(exc)) from exc
                except Exception as exc:  # a bug, not the photo: a reason, never a traceback
                    log.exception("predicting %s failed", [name for name, _ in uploads])
                    raise BadRequest(500, f"internal error while predicting "
                                          f"{', '.join(name for name, _ in uploads)}: "
                                          f"{type(exc).__name__}: {exc}; the server log has "
                                          "the traceback (please report it)") from exc
        for result, file, (name, _) in zip(results, files, uploads, strict=True):
            result["image"] = name
            if "error" in result:  # passed the header check, failed to decode (truncated...)
                raise BadRequest(422, predict.naming(result["error"].replace(file, name), name))
        return results


def create_app(service: Service, max_bytes: int, host: str = "127.0.0.1") -> Any:
    """The Flask application answering with `service`; uploads limited to `max_bytes` in all;
    `host`: the address the server listens on (a loopback one answers pages of this machine's
    names only)."""
    from flask import Flask, jsonify, request
    from werkzeug.exceptions import HTTPException

    app = Flask(__name__, static_folder=None)
    # A page of another site whose name was made to point at 127.0.0.1 (DNS rebinding) sends
    # its own name as Origin and Host alike: a loopback server answers loopback names only.
    loopback = is_loopback(host)
    app.config["MAX_CONTENT_LENGTH"] = max_bytes + MULTIPART_SLACK
    page = resources.files("facetl").joinpath("static/index.html").read_bytes()

    @app.get("/")
    def index():
        return page, 200, {"Content-Type": "text/html; charset=utf-8"}

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok", tasks=list(service.loaded))

    @app.post("/predict")
    def predict_route():
        uploads = [(upload.filename or f"upload-{number}", upload.read())
                   for number, upload in enumerate(request.files.getlist("image"))]
        return jsonify(service.answer(uploads, dict(request.args)))

    @app.before_request
    def same_origin_only():
        """A browser sends `Origin` with a POST: one from another site's page is refused, so
        a page the user visits cannot make this server work (curl sends none)."""
        origin = request.headers.get("Origin")
        if request.method != "POST" or origin is None:
            return
        if not same_origin(origin, request.host_url):
            raise BadRequest(403, f"Origin {origin} is not this server "
                                  f"({request.host_url.rstrip('/')}): use the page it serves, "
                                  "or a client that is not a web page")
        if loopback and not is_loopback(urlsplit(request.host_url).hostname or ""):
            raise BadRequest(403, f"the page {origin} is not of this machine: a server "
                                  f"listening on {host} answers pages of localhost, 127.0.0.1 "
                                  "or [::1] only (start it with --host to open it to others)")

    @app.errorhandler(BadRequest)
    def refused(exc: BadRequest):
        return jsonify(error=str(exc)), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        reason = exc.description
        if exc.code == 413:
            reason = (f"upload over the limit of {max_bytes:,} bytes (start the server with a "
                      "larger --max-mb)")
        return jsonify(error=reason), exc.code

    @app.errorhandler(Exception)
    def failed(exc: Exception):  # anything else: JSON with the reason, not Flask's HTML 500
        log.exception("%s %s failed", request.method, request.path)
        return jsonify(error=f"internal error: {type(exc).__name__}: {exc}; the server log "
                             "has the traceback (please report it)"), 500

    return app


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) is this machine's loopback."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def same_origin(origin: str, host_url: str) -> bool:
    """Whether a request's `Origin` header names the server it was sent to (scheme, host and
    port, as the request's own Host header gives them)."""
    sent, own = urlsplit(origin), urlsplit(host_url)
    return (sent.scheme.lower(), (sent.netloc or "").lower()) == (own.scheme.lower(),
                                                                  own.netloc.lower())


def make_server(app: Any, host: str, port: int, max_bytes: int, threads: int = 8) -> Any:
    """A waitress server for `app` (not started: `.run()`); port 0 picks a free one
    (`.effective_port`). A body over the limit gets Flask's 413 with the reason; one over four
    times it, waitress's own 413 as it reads, before it buffers the rest."""
    from waitress import create_server

    return create_server(app, host=host, port=port, threads=threads,
                         max_request_body_size=4 * max_bytes + MULTIPART_SLACK,
                         clear_untrusted_proxy_headers=True)


def serve(models_root: Path, host: str, port: int, max_mb: float) -> None:
    """Load the models, print the address, serve until interrupted."""
    try:
        import flask  # noqa: F401
        import waitress  # noqa: F401
    except ImportError as exc:
        raise FacetlError(f"facetl serve needs {exc.name}: pip install 'facetl[serve]'") from exc
    if max_mb <= 0:
        raise FacetlError(f"--max-mb {max_mb}: expected a size in MB (MiB, 1,048,576 bytes) "
                          "above 0")
    max_bytes = int(max_mb * 1024 * 1024)
    service = Service(models_root)
    server = make_server(create_app(service, max_bytes, host), host, port, max_bytes)
    print(f"facetl serve: http://{host}:{server.effective_port}/ (models: "
          f"{', '.join(service.loaded)}; Ctrl-C stops it)", flush=True)
    server.run()
