"""A worker's frame images, served at opaque URLs only to the assignment's own worker.

The worker view (``work_selectors.worker_frames``) hands out ``/work/assignments/<id>/frames/
<index>.jpg`` instead of storage URLs, which would tell a worker which video (and so which gold
microtask) a frame comes from and could be fetched by anyone. This view checks who asks and
streams the image from ``default_storage`` (local disk or S3 alike). Anyone but the assignment's
worker (or staff) gets the same 404 as for an assignment that does not exist.

A worker's access lasts as long as their work on the frames can matter (staff keep theirs):

- while the claim is live (claimed, before its deadline): they are annotating;
- while it is submitted and a decision is pending: they may look at what they sent;
- not after the claim was released or expired (the microtask went back to the pool, possibly
  to someone else), nor after approval or rejection (the decision is made; an appeal is judged
  by an admin, who sees the frames). Each of those is the same 404 as a frame that never was.
"""

from __future__ import annotations

import mimetypes
import posixpath
import re

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.timezone import now
from django.views.decorators.http import require_safe
from django.views.static import serve
from rest_framework.exceptions import AuthenticationFailed

from marketplace.models import Job
from marketplace.selectors import jobs_visible_to

from .api.auth import CachedTokenAuthentication
from .models import Assignment, AssignmentStatus, MicroTask, Video
from .work_selectors import frame_storage_name

# Frames never change under a name; the browser may keep them for the length of a claim or so,
# but no shared cache may (they are one worker's).
FRAME_MAX_AGE = 3600


def _worker_may_read(status: str, deadline, now) -> bool:
    """Whether the assignment's own worker may still read its frames (see the module docstring)."""
    if status == AssignmentStatus.CLAIMED:
        return deadline >= now
    return status == AssignmentStatus.SUBMITTED


def _user(request: HttpRequest):
    """The session's user, else the API token's (worker API clients fetch frames too)."""
    if request.user.is_authenticated:
        return request.user
    try:
        found = CachedTokenAuthentication().authenticate(request)
    except AuthenticationFailed:
        found = None
    return found[0] if found else AnonymousUser()


@require_safe
def assignment_frame(request: HttpRequest, pk: int, index: int) -> FileResponse:
    user = _user(request)
    row = (
        Assignment.objects.filter(pk=pk)
        .values_list("worker_id", "microtask__manifest", "status", "deadline")
        .first()
        if user.is_authenticated
        else None
    )
    if row is None:
        raise Http404("No such frame.")
    worker_id, manifest, status, deadline = row
    if not (user.is_staff or (worker_id == user.pk and _worker_may_read(status, deadline, now()))):
        raise Http404("No such frame.")
    return _frame_response(manifest, index)


def _frame_response(manifest: dict | None, index: int) -> FileResponse:
    """Frame ``index`` of ``manifest`` streamed from storage, private to the asker's browser."""
    name = frame_storage_name(manifest or {}, index)
    if name is None:
        raise Http404("No such frame.")
    try:
        handle = default_storage.open(name, "rb")
    except (FileNotFoundError, IsADirectoryError, SuspiciousFileOperation):
        raise Http404("No such frame.") from None
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    ext = posixpath.splitext(name)[1].lower() or ".jpg"
    # The opaque name, not the storage one, in Content-Disposition.
    response = FileResponse(handle, content_type=content_type, filename=f"{index}{ext}")
    patch_cache_control(response, private=True, max_age=FRAME_MAX_AGE)
    patch_vary_headers(response, ("Cookie", "Authorization"))
    return response


@require_safe
def requester_frame(request: HttpRequest, pk: int, index: int) -> FileResponse:
    """Frame ``index`` of microtask ``pk`` for its job's requester (and staff): the dashboard's
    video previews, the submissions list and the review page draw shapes over it. Anyone else
    gets the same 404 as for a frame that does not exist."""
    user = request.user
    manifest = None
    if user.is_authenticated and (user.is_requester or user.is_staff):
        manifest = (
            MicroTask.objects.filter(pk=pk, job__in=jobs_visible_to(user))
            .values_list("manifest", flat=True)
            .first()
        )
    if manifest is None:
        raise Http404("No such frame.")
    return _frame_response(manifest, index)


# --- /media/ on local disk ------------------------------------------------------------------------

# A requester's uploads and the frames extracted from them belong to the job's requester: under
# these prefixes /media/ serves only them and staff (workers get their frames through
# ``assignment_frame``). Anything else under /media/ (qualification test images) stays public.
_VIDEO_FRAMES = re.compile(r"^frames/video-(?P<video>\d+)/")
_VIDEO_UPLOADS = re.compile(r"^videos/job-(?P<job>\d+)/")


def _may_read_media(user, path: str) -> bool:
    frames = _VIDEO_FRAMES.match(path)
    uploads = _VIDEO_UPLOADS.match(path)
    if frames is None and uploads is None:
        return True
    if not user.is_authenticated:
        return False
    if user.is_staff:
        return True
    if frames is not None:
        return Video.objects.filter(pk=int(frames["video"]), job__requester=user).exists()
    return Job.objects.filter(pk=int(uploads["job"]), requester=user).exists()


@require_safe
def media(request: HttpRequest, path: str):
    """``MEDIA_ROOT`` served from local disk (no S3 bucket set), with the checks above; a file
    the asker may not read is the same 404 as a missing one."""
    name = posixpath.normpath(path).lstrip("/")
    if name.startswith("..") or not _may_read_media(_user(request), name):
        raise Http404("No such file.")
    response = serve(request, name, document_root=settings.MEDIA_ROOT)
    if _VIDEO_FRAMES.match(name) or _VIDEO_UPLOADS.match(name):
        patch_cache_control(response, private=True)
        patch_vary_headers(response, ("Cookie", "Authorization"))
    return response
