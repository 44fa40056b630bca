"""Known answers imported from COCO, CVAT for video XML and MOT become gold microtasks."""

import json

import pytest

from quality.gold_formats import GoldFormatError, parse_coco, parse_cvat_xml, parse_mot
from quality.models import GoldAnswer
from quality.scoring import score_boxes
from quality.shapes import to_annotation
from tasks.models import Slot

COCO = {
    "images": [
        {"id": 7, "file_name": "frame_000000.jpg"},
        {"id": 8, "file_name": "frame_000001.jpg"},
    ],
    "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "person"}],
    "annotations": [
        {"id": 1, "image_id": 7, "category_id": 1, "bbox": [10, 20, 30, 40], "track_id": 3},
        {"id": 2, "image_id": 8, "category_id": 2, "bbox": [5, 5, 10, 10]},
    ],
}

CVAT = """<annotations><version>1.1</version>
<track id="0" label="car">
  <box frame="0" outside="0" occluded="0" keyframe="1" xtl="1" ytl="2" xbr="11" ybr="12"/>
  <box frame="1" outside="0" occluded="0" keyframe="1" xtl="2" ytl="2" xbr="12" ybr="12"/>
  <box frame="2" outside="1" occluded="0" keyframe="1" xtl="2" ytl="2" xbr="12" ybr="12"/>
</track></annotations>"""

MOT = "1,4,10,20,30,40,1,1,1\n2,4,12,20,30,40,1,1,1\n2,5,0,0,5,5,0,1,1\n"


def test_parse_coco():
    parsed = parse_coco(json.dumps(COCO))
    assert parsed == {
        0: [("car", [10.0, 20.0, 40.0, 60.0], 3)],
        1: [("person", [5.0, 5.0, 15.0, 15.0], None)],
    }


def test_parse_cvat_video_xml_respects_outside():
    parsed = parse_cvat_xml(CVAT)
    assert parsed[0] == [("car", [1.0, 2.0, 11.0, 12.0], 0)]
    assert parsed[2] == []


def test_parse_mot_is_one_based_and_skips_ignored_rows():
    parsed = parse_mot(MOT, default_label="car")
    assert parsed[0] == [("car", [10.0, 20.0, 40.0, 60.0], 4)]
    assert parsed[1] == [("car", [12.0, 20.0, 42.0, 60.0], 4)]


@pytest.mark.parametrize("parser", [parse_coco, parse_cvat_xml, parse_mot])
def test_garbage_is_refused_with_a_reason(parser):
    with pytest.raises(GoldFormatError):
        parser("this is not an annotation file")


@pytest.mark.django_db
def test_import_mot_makes_covered_microtasks_gold(world_factory, client_for):
    world = world_factory(n=3, overlap=3, annotation_type="track", segment=5)
    lines = []
    for f in range(5):  # covers microtask 0 only (frames 0-4)
        fb = world.scene_truth_range(f, f)[f]
        for box, tid in zip(fb.boxes, fb.ids, strict=True):
            x1, y1, x2, y2 = box
            lines.append(f"{f + 1},{tid},{x1},{y1},{x2 - x1},{y2 - y1},1,1,1")
    client = client_for(world.job.requester)
    r = client.post(
        f"/api/quality/jobs/{world.job.pk}/gold-import/",
        {"format": "mot", "content": "\n".join(lines), "default_label": "car"},
        format="json",
    )
    assert r.status_code == 201, r.content
    (mt_id,) = r.json()["gold_microtasks"]
    answer = GoldAnswer.objects.get(microtask_id=mt_id)
    assert answer.microtask.is_gold
    assert not Slot.objects.filter(microtask_id=mt_id).exists()  # served from the gold pool
    truth = world.scene_truth_range(0, 4)
    for fb in truth.values():
        fb.labels[:] = 0
    assert score_boxes(truth, to_annotation(answer.frames, world.classes)).f1 == 1.0


@pytest.mark.django_db
def test_import_with_unknown_labels_changes_nothing(world_factory, client_for, other_requester):
    world = world_factory(n=1, overlap=3)
    bad = dict(COCO, categories=[{"id": 1, "name": "tank"}, {"id": 2, "name": "person"}])
    client = client_for(world.job.requester)
    r = client.post(
        f"/api/quality/jobs/{world.job.pk}/gold-import/",
        {"format": "coco", "content": json.dumps(bad)},
        format="json",
    )
    assert r.status_code == 400
    assert "tank" in r.json()["error"]["message"]
    assert not GoldAnswer.objects.exists()
    other = client_for(other_requester).post(
        f"/api/quality/jobs/{world.job.pk}/gold-import/",
        {"format": "coco", "content": json.dumps(COCO)},
        format="json",
    )
    assert other.status_code == 404


@pytest.mark.django_db
def test_requester_makes_a_microtask_gold_from_the_report_page(world_factory, client):
    world = world_factory(n=2, overlap=3)
    mt = world.regular()[0]
    client.force_login(world.job.requester)
    page = client.get(f"/quality/jobs/{world.job.pk}/")
    assert page.status_code == 200
    assert b"Replicas" in page.content
    r = client.post(
        f"/quality/jobs/{world.job.pk}/gold/",
        {"microtask": mt.pk, "payload": json.dumps(world.payload_for(mt))},
    )
    assert r.status_code == 302
    assert GoldAnswer.objects.get(microtask=mt).source == "annotated"
