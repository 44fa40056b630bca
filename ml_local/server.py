"""A local model server speaking Label Studio's ML backend protocol — a TEST DOUBLE, never used in
production.

It exists so that the tests and ``make run`` exercise ``tasks.ml_backend`` over real HTTP, the
way a team's own model server (built on ``label-studio-ml-backend``) would answer: ``GET
/health``, ``POST /setup``, ``POST /predict`` (shapes in ``tasks/ml_backend.py``'s docstring).

What it predicts: with a scene (``--scene seed=1,width=160,height=120,frames=60,n_objects=3,
motion=2,clutter=6``, the parameters of ``tasks.synthetic.make_scene``, classes car and person as
the test clips have) the true boxes of each task's ``data.frame``, in percent, with score 0.9 —
a model that is right; without one, a fixed rule: one box over the middle half of the image,
labelled with the first label of the request's ``label_config``, score 0.6.

Behaviours, chosen by the first segment of the path, so a base URL selects one
(``http://127.0.0.1:<port>/<mode>/``):

* ``ok`` — as above;
* ``slow`` — sleeps ``slow_seconds`` before answering (past the client's timeout);
* ``garbage`` — ``/predict`` answers text that is not JSON;
* ``shapes`` — ``/predict`` answers JSON of the wrong shape (``results`` not a list);
* ``outside`` — ``/predict`` answers a box beyond the image (x + width > 100 percent);
* ``error`` — every call answers HTTP 500;
* ``huge`` — ``/predict`` answers more bytes than any sane limit;
* ``auth`` — as ``ok``, but only with ``Authorization: Bearer <token>`` (``token`` option),
  401 otherwise.

A "down" backend is a port nobody listens on. ``requests`` records (path, headers) of each call.

Run on its own: ``python -m ml_local.server --port 9090 [--scene ...]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tasks.synthetic import Scene, make_scene  # pure numpy: the clips' truth

MODES = ("ok", "slow", "garbage", "shapes", "outside", "error", "huge", "auth")
MODEL_VERSION = "ml-local-1"
MAX_BODY = 50_000_000


def scene_from_spec(spec: str) -> Scene:
    """``seed=1,width=160,...`` -> the scene ``tasks.synthetic.make_scene`` makes of it."""
    values = dict(part.split("=", 1) for part in spec.split(",") if part)
    return make_scene(
        seed=int(values.get("seed", 1)),
        width=int(values.get("width", 160)),
        height=int(values.get("height", 120)),
        frames=int(values.get("frames", 60)),
        n_objects=int(values.get("n_objects", 3)),
        motion=float(values.get("motion", 2.0)),
        classes=("car", "person"),
        clutter=int(values.get("clutter", 6)),
    )


class LocalModel:
    """The server: ``start()`` on a free loopback port, ``url(mode)``, ``stop()``."""

    def __init__(
        self,
        *,
        scene: Scene | None = None,
        slow_seconds: float = 5.0,
        token: str = "",
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.scene = scene
        self.slow_seconds = slow_seconds
        self.token = token
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def url(self, mode: str = "ok") -> str:
        return f"http://127.0.0.1:{self.port}/{mode}/"

    def start(self) -> LocalModel:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # --- what the model answers -------------------------------------------------------------

    def predict_task(self, task: dict[str, Any], classes: list[str]) -> dict[str, Any]:
        data = task.get("data") or {}
        frame = data.get("frame")
        result = []
        if self.scene is not None and isinstance(frame, int) and 0 <= frame < self.scene.frames:
            w, h = self.scene.width, self.scene.height
            for b in self.scene.boxes(frame):
                if b.outside or b.w <= 0 or b.h <= 0:
                    continue
                result.append(
                    _rect(
                        b.x / w * 100, b.y / h * 100, b.w / w * 100, b.h / h * 100, b.cls, 0.9, w, h
                    )
                )
            score = 0.9
        else:
            label = classes[0] if classes else "object"
            result.append(_rect(25.0, 25.0, 50.0, 50.0, label, 0.6, 0, 0))
            score = 0.6
        return {"result": result, "score": score, "model_version": MODEL_VERSION}


def _rect(x, y, w, h, label, score, ow, oh) -> dict[str, Any]:
    return {
        "from_name": "label",
        "to_name": "image",
        "type": "rectanglelabels",
        "original_width": ow,
        "original_height": oh,
        "image_rotation": 0,
        "value": {
            "x": x,
            "y": y,
            "width": w,
            "height": h,
            "rotation": 0,
            "rectanglelabels": [label],
        },
        "score": score,
    }


LABEL = re.compile(r'<Label value="([^"]*)"')


def _make_handler(model: LocalModel):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet: the tests read ``model.requests``
            pass

        def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, value: Any) -> None:
            self._send(status, json.dumps(value).encode())

        def _route(self) -> tuple[str, str]:
            parts = [p for p in self.path.split("?")[0].split("/") if p]
            if len(parts) == 2 and parts[0] in MODES:
                return parts[0], parts[1]
            if len(parts) == 1:
                return "ok", parts[0]
            return "", ""

        def _common(self) -> tuple[str, str] | None:
            mode, call = self._route()
            with model._lock:
                model.requests.append((self.path, dict(self.headers.items())))
            if not mode:
                self._json(404, {"error": "no such route"})
                return None
            if mode == "slow":
                time.sleep(model.slow_seconds)
            if mode == "error":
                self._json(500, {"error": "the model crashed"})
                return None
            if mode == "auth" and self.headers.get("Authorization") != f"Bearer {model.token}":
                self._json(401, {"error": "unauthorised"})
                return None
            return mode, call

        def do_GET(self):
            routed = self._common()
            if routed is None:
                return
            _, call = routed
            if call == "health":
                self._json(200, {"status": "UP", "model_class": "LocalModel", "v2": "true"})
            else:
                self._json(404, {"error": "no such route"})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._json(413, {"error": "too large"})
                return
            raw = self.rfile.read(length)
            routed = self._common()
            if routed is None:
                return
            mode, call = routed
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self._json(400, {"error": "not JSON"})
                return
            if call == "setup":
                self._json(200, {"model_version": MODEL_VERSION})
                return
            if call != "predict":
                self._json(404, {"error": "no such route"})
                return
            tasks = body.get("tasks") or []
            classes = LABEL.findall(body.get("label_config") or "")
            if mode == "garbage":
                self._send(200, b"<html>this is not JSON", "text/html")
            elif mode == "shapes":
                self._json(200, {"results": {"boxes": "many"}, "model_version": MODEL_VERSION})
            elif mode == "outside":
                item = _rect(80.0, 10.0, 40.0, 20.0, classes[0] if classes else "x", 0.9, 0, 0)
                results = [{"result": [item], "score": 0.9} for _ in tasks]
                self._json(200, {"results": results, "model_version": MODEL_VERSION})
            elif mode == "huge":
                self._send(200, b'{"results": [' + b" " * 5_000_000 + b"]}")
            else:
                results = [model.predict_task(t, classes) for t in tasks]
                self._json(200, {"results": results, "model_version": MODEL_VERSION})

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9090)
    parser.add_argument("--scene", default="", help="seed=1,width=160,... (tasks.synthetic)")
    parser.add_argument("--token", default="")
    parser.add_argument("--slow-seconds", type=float, default=30.0)
    args = parser.parse_args()
    scene = scene_from_spec(args.scene) if args.scene else None
    model = LocalModel(
        scene=scene,
        slow_seconds=args.slow_seconds,
        token=args.token,
        host=args.host,
        port=args.port,
    )
    print(f"ml_local: Label Studio ML backend protocol on {model.url()}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        model._httpd.serve_forever()


if __name__ == "__main__":
    main()
