"""Shared fixtures: tiny images in every format prepare must read, and a loopback HTTP server.

The server answers the good and the bad URLs a real image CSV contains (404s, HTML pages,
truncated files, huge bodies, stalls, flaky 503s) so the download code meets them all without
touching the network.
"""

from __future__ import annotations

import io
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from benchmarks.odd_inputs import png_bomb
from tests.synthetic import class_image

HUGE_BODY = b"\xff" * 64 * 1024  # bigger than the small max_bytes the tests set
SLOW_S = 2.0  # how long the slow endpoint stalls; tests use timeouts of about 0.3 s


def encode(array: np.ndarray, fmt: str, mode: str | None = None) -> bytes:
    """`array` in format `fmt` (JPEGs at high quality, so decodes compare with the original)."""
    image = Image.fromarray(array)
    buffer = io.BytesIO()
    options = {"quality": 95, "subsampling": 0} if fmt == "JPEG" else {}
    (image.convert(mode) if mode else image).save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def rgb() -> np.ndarray:
    """The 32x32 picture every encoded sample below shows."""
    return class_image(0, np.random.default_rng(7))


@pytest.fixture(scope="session")
def samples(rgb: np.ndarray) -> dict[str, bytes]:
    """Encoded images by kind: the formats and colour modes prepare must turn into RGB."""
    jpeg = encode(rgb, "JPEG")
    return {
        "jpeg": jpeg,
        "png": encode(rgb, "PNG"),
        "gray_jpeg": encode(rgb, "JPEG", "L"),
        "rgba_png": encode(rgb, "PNG", "RGBA"),
        "cmyk_jpeg": encode(rgb, "JPEG", "CMYK"),
        "palette_png": encode(rgb, "PNG", "P"),
        "truncated_jpeg": jpeg[: len(jpeg) // 2],
        "bomb_png": png_bomb(30_000, 30_000),
        "html": b"<!doctype html><html><body>Image not found</body></html>",
    }


@dataclass
class Route:
    """What the server answers on one path."""

    body: bytes = b""
    status: int = 200
    content_type: str = "image/jpeg"
    send_length: bool = True  # False: no Content-Length, the body ends when the socket closes
    stall_s: float = 0.0  # wait this long before answering
    fail_first: int = 0  # answer 503 to this many requests before the real answer


class ImageServer:
    """A threaded http.server on 127.0.0.1 with an ephemeral port; counts hits per path."""

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes
        self.hits: Counter[str] = Counter()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval, once per test.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,),
                                        daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{path}"

    def _count(self, path: str) -> int:
        with self._lock:
            self.hits[path] += 1
            return self.hits[path]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                route = server.routes.get(self.path, Route(b"no such route", 404, "text/plain"))
                hit = server._count(self.path)
                if route.stall_s and server.stopping.wait(route.stall_s):
                    return  # the test is over: drop the connection without an answer
                if hit <= route.fail_first:
                    route = Route(b"try again later", 503, "text/plain")
                try:
                    self.send_response(route.status)
                    self.send_header("Content-Type", route.content_type)
                    if route.send_length:
                        self.send_header("Content-Length", str(len(route.body)))
                    self.end_headers()
                    self.wfile.write(route.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up first (timeouts, size caps): expected

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass  # keep test output quiet

        return Handler

    def __enter__(self) -> ImageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def server(samples: dict[str, bytes]) -> Iterator[ImageServer]:
    """The good and bad URLs of a real image CSV, served from 127.0.0.1 for one test."""
    routes = {
        "/good.jpg": Route(samples["jpeg"]),
        "/good.png": Route(samples["png"], content_type="image/png"),
        "/png-named.jpg": Route(samples["png"]),
        "/gray.jpg": Route(samples["gray_jpeg"]),
        "/rgba.png": Route(samples["rgba_png"], content_type="image/png"),
        "/cmyk.jpg": Route(samples["cmyk_jpeg"]),
        "/missing.jpg": Route(b"not found", 404, "text/plain"),
        "/page.jpg": Route(samples["html"], content_type="text/html"),
        "/truncated.jpg": Route(samples["truncated_jpeg"]),
        "/huge.jpg": Route(HUGE_BODY),
        "/bomb.png": Route(samples["bomb_png"], content_type="image/png"),
        "/huge-unsized.jpg": Route(HUGE_BODY, send_length=False),
        "/slow.jpg": Route(samples["jpeg"], stall_s=SLOW_S),
        "/flaky.jpg": Route(samples["jpeg"], fail_first=2),
    }
    with ImageServer(routes) as running:
        yield running
