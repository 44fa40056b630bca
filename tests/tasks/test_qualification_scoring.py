"""A qualification question is scored exactly like a paid gold submission, for every type."""

from __future__ import annotations

import copy

import pytest

from marketplace.models import QualificationStatus
from quality import qualifying
from quality import services as quality
from quality.models import GoldAnswer, GoldResult
from tasks import claiming
from tasks.annotations import validate_payload
from tasks.models import MicroTask, QualificationAnswer, QualificationItem, Submission
from tests.factories import WorkerFactory
from tests.tasks.claim_fixtures import manifest_for, published_job, qualified_worker

pytestmark = pytest.mark.django_db

FRAMES = [5, 6, 7, 8, 9]  # the gold microtask's (index 1 of five-frame microtasks)

TRUTH = {
    "bbox": {
        "boxes": [
            {"frame": 5, "label": "car", "box": [100, 100, 200, 180]},
            {"frame": 5, "label": "person", "box": [300, 50, 360, 200]},
            {"frame": 7, "label": "car", "box": [120, 100, 220, 180]},
        ]
    },
    "polygon": {
        "polygons": [
            {"frame": 5, "label": "car", "points": [[100, 100], [200, 100], [220, 180], [90, 170]]},
            {"frame": 8, "label": "person", "points": [[300, 50], [360, 60], [330, 200]]},
        ]
    },
    "classify": {"labels": [{"frame": f, "label": "car" if f % 2 else "person"} for f in FRAMES]},
    "track": {
        "tracks": [
            {
                "id": 1,
                "label": "car",
                "keyframes": [
                    {"frame": 5, "box": [100, 100, 200, 180]},
                    {"frame": 9, "box": [180, 120, 280, 200]},
                ],
            },
            {
                "id": 2,
                "label": "person",
                "keyframes": [
                    {"frame": 5, "box": [400, 50, 460, 200]},
                    {"frame": 7, "box": [420, 50, 480, 200]},
                    {"frame": 8, "outside": True},
                ],
            },
        ]
    },
}
OTHER = {"car": "person", "person": "car"}


def _shift(payload: dict, dx: float) -> dict:
    """Every shape moved ``dx`` pixels right; for classification, the first ``dx / 10`` frames
    get the other class."""
    out = copy.deepcopy(payload)
    for b in out.get("boxes", []):
        b["box"] = [b["box"][0] + dx, b["box"][1], b["box"][2] + dx, b["box"][3]]
    for p in out.get("polygons", []):
        p["points"] = [[x + dx, y] for x, y in p["points"]]
    for t in out.get("tracks", []):
        for k in t["keyframes"]:
            if "box" in k:
                k["box"] = [k["box"][0] + dx, k["box"][1], k["box"][2] + dx, k["box"][3]]
    for lab in out.get("labels", [])[: round(dx / 10)]:
        lab["label"] = OTHER[lab["label"]]
    return out


def answers(kind: str) -> dict[str, dict]:
    return {
        "perfect": TRUTH[kind],
        "sloppy": _shift(TRUTH[kind], 9),  # loose but recognisable (classify: one frame wrong)
        "bad": _shift(TRUTH[kind], 120),  # nowhere near (classify: every frame wrong)
    }


def _question(kind: str) -> QualificationItem:
    item = QualificationItem.objects.create(
        annotation_type=kind,
        label_classes=["car", "person"],
        frame_start=FRAMES[0],
        frame_end=FRAMES[-1],
        frames=FRAMES if kind != "track" else [],
        manifest=manifest_for(FRAMES),
    )
    QualificationAnswer.objects.create(item=item, payload=TRUTH[kind])
    return item


KINDS = ["bbox", "polygon", "classify", "track"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_perfect_answer_passes_and_a_bad_one_fails(kind, client_for):
    item = _question(kind)
    url = f"/api/work/qualifications/{kind}/"
    good = client_for(WorkerFactory()).post(
        url, {"answers": {str(item.pk): TRUTH[kind]}}, format="json"
    )
    assert good.status_code == 200, good.content
    assert (good.json()["status"], good.json()["score"]) == ("passed", 1.0)
    bad = client_for(WorkerFactory()).post(
        url, {"answers": {str(item.pk): answers(kind)["bad"]}}, format="json"
    )
    assert bad.status_code == 200, bad.content
    assert bad.json()["status"] == "failed" and bad.json()["score"] < 0.7


@pytest.mark.parametrize("kind", KINDS)
def test_the_score_is_the_gold_score_of_the_same_answer(kind, monkeypatch):
    monkeypatch.setattr(claiming._rng, "random", lambda: 0.0)  # the gold microtask first
    job = published_job(n=1, gold=1, gold_rate=0.5, annotation_type=kind)
    gold_mt = MicroTask.objects.get(job=job, is_gold=True)
    assert gold_mt.frame_start == FRAMES[0]
    quality.gold_answer_set(microtask_id=gold_mt.pk, payload=TRUTH[kind], by=job.requester)
    gold = GoldAnswer.objects.get(microtask=gold_mt)
    item = _question(kind)
    ctx = claiming.annotation_context(gold_mt)

    scores = {}
    for name, payload in answers(kind).items():
        result = qualifying.qualification_submit(
            worker=WorkerFactory(), annotation_type=kind, responses={str(item.pk): payload}
        )
        submitted = validate_payload(payload, ctx).frames
        expected = quality.score_frames(job=job, answer=gold.frames, submitted=submitted).score
        assert result.attempt.score == pytest.approx(expected, abs=1e-12), name
        passed = result.qualification.status == QualificationStatus.PASSED
        assert passed == (expected >= 0.7), name
        scores[name] = result.attempt.score
    assert scores["perfect"] == 1.0 > scores["sloppy"] > scores["bad"]

    # And end to end: a worker submits the sloppy answer on the paid gold microtask.
    worker = qualified_worker(kind)
    a = claiming.assignment_claim(worker=worker, job_id=job.pk)
    assert a.microtask_id == gold_mt.pk
    claiming.assignment_submit(worker=worker, assignment_id=a.pk, payload=answers(kind)["sloppy"])
    if not GoldResult.objects.filter(assignment=a).exists():
        quality.submission_process(submission_id=Submission.objects.get(assignment=a).pk)
    paid = GoldResult.objects.get(assignment=a)
    assert paid.score == pytest.approx(scores["sloppy"], abs=1e-12)
