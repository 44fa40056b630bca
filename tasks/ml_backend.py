"""The one HTTP client of a requester's model server, speaking Label Studio's ML backend protocol.

Label Studio's protocol (``label_studio_ml/api.py`` of HumanSignal/label-studio-ml-backend), the
three calls we make, each a JSON body and a JSON answer:

* ``GET  <base>/health`` → ``{"status": "UP", ...}``
* ``POST <base>/setup``  ``{"project", "schema": <label config XML>, "hostname", "access_token"}``
  → ``{"model_version": "..."}``
* ``POST <base>/predict`` ``{"tasks": [{"id", "data": {"image": ...}}], "project",
  "label_config", "params": {"context": null}}`` → ``{"results": [prediction, ...],
  "model_version"}``, one prediction per task in the order sent, each
  ``{"result": [item, ...], "score", "model_version"}`` (a list of predictions per task is taken
  too: its first). An item we use is ``{"type": "rectanglelabels", "original_width",
  "original_height", "value": {"x", "y", "width", "height", "rotation", "rectanglelabels":
  [label]}, "score"}`` with x/y/width/height in percent of the image; other types are skipped.

One task per frame; its image is sent inline as a ``data:image/jpeg;base64,`` URI, so the
backend needs no access to our storage and no credentials of ours.

Safety (read before changing): the URL is a requester's, so

* only hosts in ``ML_BACKEND_ALLOWED_HOSTS`` are called (an exact host name or address, any
  port; or ``host:port``, that port only; empty refuses all — the SSRF choice, see the
  setting), checked when the URL is configured and again before every call; redirects are not
  followed (a redirect could leave the allow-list);
* every call has a timeout (``ML_BACKEND_TIMEOUT_SECONDS``, also a deadline for the whole read)
  and a response size limit (``ML_BACKEND_MAX_RESPONSE_BYTES``);
* the answer is parsed strictly: anything but the shapes above, a coordinate outside the image,
  or a non-finite number is ``BackendInvalid``, and nothing of it is kept.

Errors: ``BackendTimeout`` (no answer in time), ``BackendUnavailable`` (connection refused, HTTP
error status), ``BackendInvalid`` (an answer we cannot use). ``tasks.proposals`` records each as
the proposal's status; the microtask stays plain annotation.
"""

from __future__ import annotations

import base64
import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import quoteattr

from django.conf import settings

URL_MAX_LENGTH = 500
TOKEN_MAX_LENGTH = 500
SCHEMES = ("http", "https")
COORDINATE_SLACK = 0.01  # percent: rounding in a backend's arithmetic, not a box off the image


class BackendError(Exception):
    """The model backend could not give proposals."""

    status = "failed"


class BackendTimeout(BackendError):
    status = "timeout"


class BackendUnavailable(BackendError):
    status = "failed"


class BackendInvalid(BackendError):
    status = "invalid"


def url_problem(url: str) -> str | None:
    """Why ``url`` may not be used as a backend (None: it may)."""
    if not isinstance(url, str) or not url:
        return "Give the backend's URL."
    if len(url) > URL_MAX_LENGTH:
        return f"At most {URL_MAX_LENGTH} characters."
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return "Not a valid URL."
    if parts.scheme not in SCHEMES:
        return "Use an http:// or https:// URL."
    if not parts.hostname:
        return "The URL has no host."
    if parts.username or parts.password:
        return "Put credentials in the token, not in the URL."
    if parts.query or parts.fragment:
        return "The URL takes no query or fragment."
    host = parts.hostname.lower()
    port = port or (443 if parts.scheme == "https" else 80)
    allowed = {h.strip().lower() for h in settings.ML_BACKEND_ALLOWED_HOSTS if h.strip()}
    if host not in allowed and f"{host}:{port}" not in allowed:
        return (
            "This server may not call that host; the platform's operator lists the model "
            "servers it may call (ML_BACKEND_ALLOWED_HOSTS)."
        )
    return None


def label_config(classes: list[str] | tuple[str, ...]) -> str:
    """The Label Studio labeling config of a box job with ``classes``."""
    labels = "".join(f"<Label value={quoteattr(c)}/>" for c in classes)
    return (
        '<View><Image name="image" value="$image"/>'
        f'<RectangleLabels name="label" toName="image">{labels}</RectangleLabels></View>'
    )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a 3xx surfaces as an HTTPError: refused, never followed


_OPENER = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler({}))


def _call(base_url: str, path: str, *, token: str = "", body: Any = None) -> Any:
    problem = url_problem(base_url)
    if problem:
        raise BackendUnavailable(problem)
    url = base_url.rstrip("/") + "/" + path
    data = None if body is None else json.dumps(body).encode()
    headers = {"Accept": "application/json", "User-Agent": "crowdlabel-proposals/1"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers)
    timeout = float(settings.ML_BACKEND_TIMEOUT_SECONDS)
    limit = int(settings.ML_BACKEND_MAX_RESPONSE_BYTES)
    deadline = time.monotonic() + timeout
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            chunks, size = [], 0
            while True:
                if time.monotonic() > deadline:
                    raise BackendTimeout(f"{path}: no complete answer within {timeout:g} s")
                chunk = response.read(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise BackendInvalid(f"{path}: the answer is larger than {limit} bytes")
                chunks.append(chunk)
    except urllib.error.HTTPError as exc:
        raise BackendUnavailable(f"{path}: HTTP {exc.code}") from None
    except TimeoutError:
        raise BackendTimeout(f"{path}: no answer within {timeout:g} s") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise BackendTimeout(f"{path}: no answer within {timeout:g} s") from None
        raise BackendUnavailable(f"{path}: {exc.reason}") from None
    except (ConnectionError, OSError) as exc:
        raise BackendUnavailable(f"{path}: {exc}") from None
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError):
        raise BackendInvalid(f"{path}: the answer is not JSON") from None


def health(base_url: str, *, token: str = "") -> None:
    answer = _call(base_url, "health", token=token)
    if not isinstance(answer, dict) or answer.get("status") != "UP":
        raise BackendInvalid('health: the answer is not {"status": "UP"}')


def setup(base_url: str, *, token: str, project: str, classes: list[str]) -> str:
    """``/setup``: the model version the backend will predict with."""
    answer = _call(
        base_url,
        "setup",
        token=token,
        body={
            "project": project,
            "schema": label_config(classes),
            "hostname": "",
            "access_token": "",
        },
    )
    if not isinstance(answer, dict):
        raise BackendInvalid("setup: the answer is not a JSON object")
    version = answer.get("model_version", "")
    if version is None:
        version = ""
    if not isinstance(version, str | int | float):
        raise BackendInvalid("setup: model_version is not a string")
    return str(version)[:100]


@dataclass(frozen=True)
class FrameImage:
    frame: int
    jpeg: bytes
    width: int
    height: int


@dataclass(frozen=True)
class PredictedBox:
    frame: int
    box: tuple[float, float, float, float]  # pixels of the frame
    score: float | None
    label: str


@dataclass
class Prediction:
    boxes: list[PredictedBox]
    score: float | None
    model_version: str


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BackendInvalid(f"predict: {what} is not a finite number")
    return float(value)


def _score(value: Any, what: str) -> float | None:
    if value is None:
        return None
    score = _number(value, what)
    if not 0 <= score <= 1:
        raise BackendInvalid(f"predict: {what} {score} is not between 0 and 1")
    return score


def _item_box(item: dict, frame: FrameImage, where: str) -> PredictedBox | None:
    value = item.get("value")
    if not isinstance(value, dict):
        raise BackendInvalid(f"predict: {where}.value is not an object")
    labels = value.get("rectanglelabels")
    if not isinstance(labels, list) or len(labels) != 1 or not isinstance(labels[0], str):
        raise BackendInvalid(f"predict: {where}.value.rectanglelabels is not one label")
    x, y = _number(value.get("x"), f"{where}.value.x"), _number(value.get("y"), f"{where}.value.y")
    w = _number(value.get("width"), f"{where}.value.width")
    h = _number(value.get("height"), f"{where}.value.height")
    rotation = value.get("rotation", 0)
    if rotation not in (0, 0.0, None):
        raise BackendInvalid(f"predict: {where} is rotated; only upright boxes are taken")
    s = COORDINATE_SLACK
    if w <= 0 or h <= 0 or x < -s or y < -s or x + w > 100 + s or y + h > 100 + s:
        raise BackendInvalid(f"predict: {where} lies outside the image (percent coordinates)")
    box = (
        max(0.0, x) / 100 * frame.width,
        max(0.0, y) / 100 * frame.height,
        min(100.0, x + w) / 100 * frame.width,
        min(100.0, y + h) / 100 * frame.height,
    )
    return PredictedBox(frame.frame, box, _score(item.get("score"), f"{where}.score"), labels[0])


def parse_predictions(answer: Any, frames: list[FrameImage]) -> Prediction:
    """The ``/predict`` answer for ``frames`` (one task each, in order), strictly."""
    if not isinstance(answer, dict) or not isinstance(answer.get("results"), list):
        raise BackendInvalid('predict: the answer is not {"results": [...]}')
    results = answer["results"]
    if len(results) != len(frames):
        raise BackendInvalid(f"predict: {len(results)} results for {len(frames)} tasks")
    version = answer.get("model_version") or ""
    boxes: list[PredictedBox] = []
    scores: list[float] = []
    for k, (prediction, frame) in enumerate(zip(results, frames, strict=True)):
        if isinstance(prediction, list):  # several predictions for the task: the first
            prediction = prediction[0] if prediction else {"result": []}
        if not isinstance(prediction, dict) or not isinstance(prediction.get("result"), list):
            raise BackendInvalid(f'predict: results[{k}] is not {{"result": [...]}}')
        score = _score(prediction.get("score"), f"results[{k}].score")
        if score is not None:
            scores.append(score)
        version = version or prediction.get("model_version") or ""
        for j, item in enumerate(prediction["result"]):
            where = f"results[{k}].result[{j}]"
            if not isinstance(item, dict):
                raise BackendInvalid(f"predict: {where} is not an object")
            if item.get("type") != "rectanglelabels":
                continue
            box = _item_box(item, frame, where)
            if box is not None:
                boxes.append(box if box.score is not None else _with_score(box, score))
    if not isinstance(version, str | int | float):
        raise BackendInvalid("predict: model_version is not a string")
    overall = sum(scores) / len(scores) if scores else None
    return Prediction(boxes, overall, str(version)[:100])


def _with_score(box: PredictedBox, score: float | None) -> PredictedBox:
    return PredictedBox(box.frame, box.box, score, box.label)


def predict(
    base_url: str, *, token: str, project: str, classes: list[str], frames: list[FrameImage]
) -> Prediction:
    """``/health``, ``/setup`` then ``/predict`` for ``frames``; raises a ``BackendError``."""
    health(base_url, token=token)
    version = setup(base_url, token=token, project=project, classes=classes)
    tasks = [
        {
            "id": f.frame,
            "data": {
                "image": "data:image/jpeg;base64," + base64.b64encode(f.jpeg).decode("ascii"),
                "frame": f.frame,
            },
        }
        for f in frames
    ]
    answer = _call(
        base_url,
        "predict",
        token=token,
        body={
            "tasks": tasks,
            "project": project,
            "label_config": label_config(classes),
            "params": {"context": None},
        },
    )
    prediction = parse_predictions(answer, frames)
    prediction.model_version = prediction.model_version or version
    return prediction
