"""Gold for the new kinds: masks from COCO (RLE, as pycocotools writes it) and CVAT for video
1.1 (``<mask>``), attributes and relations from COCO (``attributes``, top-level ``relations``)
and CVAT (``<attribute>``), events from ActivityNet — read back from our own exports, and a bad
file refused with the place in the file as a field, nothing imported."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from quality import gold_formats
from quality.gold_formats import GoldFormatError
from quality.models import GoldAnswer
from tasks import exports, rle
from tasks.models import MicroTask
from tests.tasks.claim_fixtures import HEIGHT, WIDTH

ATTRIBUTES = {
    "car": [
        {"name": "colour", "type": "choice", "values": ["red", "blue"]},
        {"name": "occluded", "type": "bool"},
    ],
    "person": [],
}


def _disc(cx, cy, r, h=HEIGHT, w=WIDTH):
    yy, xx = np.mgrid[:h, :w]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def _coco_masks(frames, masks_per_frame):
    """A COCO file whose segmentations are pycocotools' own compressed RLE."""
    images, anns = [], []
    for k, f in enumerate(frames):
        images.append({"id": 100 + k, "file_name": f"frame_{f:06d}.jpg", "width": WIDTH})
        for m in masks_per_frame(f):
            enc = coco_mask.encode(np.asfortranarray(m.astype(np.uint8)))
            enc["counts"] = enc["counts"].decode("ascii")
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": 100 + k,
                    "category_id": 1,
                    "segmentation": enc,
                    "bbox": [0, 0, 1, 1],
                }
            )
    return {"images": images, "categories": [{"id": 1, "name": "car"}], "annotations": anns}


# --- The parsers (pure) -------------------------------------------------------------------------


def test_coco_rle_masks_from_pycocotools_decode_to_the_same_pixels():
    m = _disc(50, 40, 12, h=90, w=120)
    doc = _coco_masks([3], lambda f: [m])
    parsed = gold_formats.parse_coco_shapes(json.dumps(doc))
    (shape,) = parsed.frames[3]
    assert shape["label"] == "car"
    np.testing.assert_array_equal(rle.decode(shape["rle"]), m)
    # the uncompressed list form (pycocotools' frPyObjects input) reads the same
    doc["annotations"][0]["segmentation"] = rle.encode(m)
    again = gold_formats.parse_coco_shapes(json.dumps(doc))
    np.testing.assert_array_equal(rle.decode(again.frames[3][0]["rle"]), m)


def test_coco_attributes_and_relations_read_back_from_our_export():
    video = exports.ExportVideo(
        name="video-1",
        width=WIDTH,
        height=HEIGHT,
        frame_count=10,
        frames={
            2: [
                exports.ExportObject(
                    "person", 10, 10, 20, 40, track_id=4, relations=(("rides", 1),)
                ),
                exports.ExportObject(
                    "car", 5, 30, 60, 30, track_id=7, attributes={"colour": "red"}
                ),
            ]
        },
    )
    parsed = gold_formats.parse_coco_shapes(exports.to_coco([video], ["car", "person"]).decode())
    person, car = parsed.frames[2]
    assert person["box"] == [10.0, 10.0, 30.0, 50.0] and person["track"] == 4
    # CVAT's own keys stay in the parse; the import drops those the job does not declare.
    assert car["attributes"]["colour"] == "red" and car["track"] == 7
    assert parsed.relations == {2: [(0, "rides", 1)]}


def test_cvat_masks_and_typed_attributes_read_back_from_our_export():
    m = _disc(300, 200, 30)
    video = exports.ExportVideo(
        name="v",
        width=WIDTH,
        height=HEIGHT,
        frame_count=5,
        frames={1: [exports.mask_object("car", rle.encode(m))]},
    )
    xml = exports.to_cvat_video(video, ["car"]).decode()
    parsed = gold_formats.parse_cvat_shapes(xml, size=[HEIGHT, WIDTH])
    (shape,) = parsed.frames[1]
    np.testing.assert_array_equal(rle.decode(shape["rle"]), m)

    boxes = exports.ExportVideo(
        name="v",
        width=WIDTH,
        height=HEIGHT,
        frame_count=5,
        frames={
            0: [
                exports.ExportObject(
                    "car", 1, 2, 10, 10, track_id=3, attributes={"colour": "blue", "occluded": True}
                )
            ]
        },
    )
    xml = b"".join(exports.iter_cvat_video(boxes, ["car"], label_attributes=ATTRIBUTES)).decode()
    (car,) = gold_formats.parse_cvat_shapes(xml, size=[HEIGHT, WIDTH]).frames[0]
    assert car["attributes"] == {"colour": "blue", "occluded": True}  # a checkbox is a bool
    assert car["box"] == [1.0, 2.0, 11.0, 12.0] and isinstance(car["track"], int)


def test_activitynet_events_read_back_from_our_export_in_frames():
    video = exports.ExportVideo(
        name="video-9",
        width=WIDTH,
        height=HEIGHT,
        frame_count=300,
        fps=30.0,
        events=[exports.ExportEvent("crossing", 30, 59), exports.ExportEvent("waving", 100, 100)],
    )
    entries = gold_formats.parse_activitynet(exports.to_activitynet([video], ["crossing"]).decode())
    assert gold_formats.events_in_frames(entries["video-9"], fps=25.0) == [
        {"label": "crossing", "start": 30, "end": 59},
        {"label": "waving", "start": 100, "end": 100},
    ]
    # Seconds alone (a file from elsewhere): [t0·fps, t1·fps) at the file's fps.
    doc = {
        "database": {"clip": {"fps": 10, "annotations": [{"segment": [1.0, 2.5], "label": "x"}]}}
    }
    entry = gold_formats.parse_activitynet(json.dumps(doc))["clip"]
    assert gold_formats.events_in_frames(entry, fps=30) == [{"label": "x", "start": 10, "end": 24}]


@pytest.mark.parametrize(
    ("parse", "text", "field"),
    [
        (
            gold_formats.parse_coco_shapes,
            json.dumps(
                {
                    "images": [{"id": 1}],
                    "categories": [{"id": 1, "name": "car"}],
                    "annotations": [
                        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]},
                        {
                            "image_id": 1,
                            "category_id": 1,
                            "segmentation": {"size": [4, 4], "counts": [3, 99]},
                        },
                    ],
                }
            ),
            "annotations[1].segmentation.counts",
        ),
        (
            gold_formats.parse_coco_shapes,
            json.dumps(
                {
                    "images": [{"id": 1}],
                    "categories": [{"id": 1, "name": "car"}],
                    "annotations": [
                        {"id": 5, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}
                    ],
                    "relations": [{"subject_id": 5, "predicate": "rides", "object_id": 6}],
                }
            ),
            "relations[0].object_id",
        ),
        (
            lambda t: gold_formats.parse_cvat_shapes(t, size=[10, 10]),
            '<annotations><track id="0" label="car"><mask frame="0" rle="5, 5" left="8" top="0" '
            'width="5" height="2"/></track></annotations>',
            "track[0].mask[0].rle",
        ),
        (
            gold_formats.parse_activitynet,
            json.dumps({"database": {"v": {"annotations": [{"segment": [5, 2], "label": "x"}]}}}),
            "database.v.annotations[0].segment",
        ),
    ],
)
def test_a_bad_file_is_refused_with_where(parse, text, field):
    with pytest.raises(GoldFormatError) as exc:
        parse(text)
    assert exc.value.field == field


# --- Through the API on PostgreSQL --------------------------------------------------------------


def _post(client, job, fmt, doc):
    return client.post(
        f"/api/quality/jobs/{job.pk}/gold-import/",
        {"format": fmt, "content": doc if isinstance(doc, str) else json.dumps(doc)},
        format="json",
    )


@pytest.mark.django_db
def test_mask_gold_from_coco_rle(world_factory, client_for):
    world = world_factory(n=2, overlap=1, annotation_type="mask", label_classes=["car"])
    mt = world.regular()[0]
    frames = world.frames_of(mt)
    masks = {f: _disc(100 + 5 * f, 120, 25) for f in frames}
    r = _post(
        client_for(world.job.requester),
        world.job,
        "coco",
        _coco_masks(frames, lambda f: [masks[f]]),
    )
    assert r.status_code == 201, r.content
    assert r.json()["gold_microtasks"] == [mt.pk]
    answer = GoldAnswer.objects.get(microtask=mt)
    assert answer.source == "coco"
    for f in frames:
        (shape,) = answer.frames[str(f)]
        np.testing.assert_array_equal(rle.decode(shape["rle"]), masks[f])


@pytest.mark.django_db
def test_box_gold_with_attributes_and_relations_from_coco(world_factory, client_for):
    world = world_factory(
        n=2, overlap=1, label_attributes=ATTRIBUTES, relation_predicates=["rides"]
    )
    mt = world.regular()[0]
    images, anns, rels = [], [], []
    for k, f in enumerate(world.frames_of(mt)):
        images.append({"id": k + 1, "frame_id": f})
        anns.append(
            {"id": 2 * k + 1, "image_id": k + 1, "category_id": 2, "bbox": [10, 10, 20, 40]}
        )
        anns.append(
            {
                "id": 2 * k + 2,
                "image_id": k + 1,
                "category_id": 1,
                "bbox": [5, 30, 60, 30],
                "attributes": {"colour": "red", "occluded": False, "track_id": 9},
            }
        )
        rels.append(
            {
                "image_id": k + 1,
                "subject_id": 2 * k + 1,
                "predicate": "rides",
                "object_id": 2 * k + 2,
            }
        )
    doc = {
        "images": images,
        "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "person"}],
        "annotations": anns,
        "relations": rels,
    }
    client = client_for(world.job.requester)
    r = _post(client, world.job, "coco", doc)
    assert r.status_code == 201, r.content
    answer = GoldAnswer.objects.get(microtask=mt)
    for f in world.frames_of(mt):
        person, car = answer.frames[str(f)]
        assert car["attributes"] == {"colour": "red", "occluded": False}
        assert person["relations"] == [{"predicate": "rides", "object": 1}]

    # A value the job's schema refuses: a 400 naming the place, nothing imported.
    GoldAnswer.objects.all().delete()
    MicroTask.objects.filter(pk=mt.pk).update(is_gold=False)
    anns[1]["attributes"]["colour"] = "green"
    bad = _post(client, world.job, "coco", doc)
    assert bad.status_code == 400
    fields = bad.json()["error"]["fields"]
    assert any(k.startswith("content.answer.boxes[1].attributes.colour") for k in fields), fields
    assert not GoldAnswer.objects.exists()


@pytest.mark.django_db
def test_mask_gold_from_cvat_and_a_bad_mask_imports_nothing(world_factory, client_for):
    world = world_factory(n=2, overlap=1, annotation_type="mask", label_classes=["car"])
    mts = world.regular()
    frames = {
        f: [exports.mask_object("car", rle.encode(_disc(200, 150, 20 + f)))]
        for mt in mts
        for f in world.frames_of(mt)
    }
    video = exports.ExportVideo(name="v", width=WIDTH, height=HEIGHT, frame_count=50, frames=frames)
    xml = exports.to_cvat_video(video, ["car"]).decode()
    client = client_for(world.job.requester)
    broken = xml.replace('left="', 'left="9999', 1)
    r = _post(client, world.job, "cvat", broken)
    assert r.status_code == 400
    (field,) = r.json()["error"]["fields"]
    assert field.startswith("content.track[0].mask[") and field.endswith(".rle")
    assert not GoldAnswer.objects.exists()
    r = _post(client, world.job, "cvat", xml)
    assert r.status_code == 201, r.content
    assert sorted(r.json()["gold_microtasks"]) == sorted(mt.pk for mt in mts)
    answer = GoldAnswer.objects.get(microtask=mts[0])
    f = world.frames_of(mts[0])[0]
    np.testing.assert_array_equal(
        rle.decode(answer.frames[str(f)][0]["rle"]), _disc(200, 150, 20 + f)
    )


@pytest.mark.django_db
def test_event_gold_from_activitynet(world_factory, client_for):
    world = world_factory(
        n=2, overlap=1, annotation_type="event", label_classes=["crossing", "waving"], segment=10
    )
    first, second = world.regular()
    video = first.video
    client = client_for(world.job.requester)
    doc = {
        "database": {
            f"video-{video.pk}": {
                "fps": 30,
                "annotations": [
                    {"segment": [0, 0], "frames": [2, 13], "label": "crossing"},
                    {"segment": [0, 0], "frames": [15, 17], "label": "waving"},
                ],
            }
        }
    }
    wrong = json.loads(json.dumps(doc))
    wrong["database"][f"video-{video.pk}"]["annotations"][1]["label"] = "dancing"
    r = _post(client, world.job, "activitynet", wrong)
    assert r.status_code == 400 and "dancing" in r.json()["error"]["message"]
    assert "content" in r.json()["error"]["fields"]
    assert _post(client, world.job, "mot", "1,1,1,1,1,1").status_code == 400  # not for events
    assert not GoldAnswer.objects.exists()

    r = _post(client, world.job, "activitynet", doc)
    assert r.status_code == 201, r.content
    a1 = GoldAnswer.objects.get(microtask=first)
    a2 = GoldAnswer.objects.get(microtask=second)
    assert a1.source == "activitynet"
    # An event across the two microtasks is cut at their border, in both.
    assert a1.payload["events"] == [{"label": "crossing", "start": 2, "end": 9}]
    assert a2.payload["events"] == [
        {"label": "crossing", "start": 10, "end": 13},
        {"label": "waving", "start": 15, "end": 17},
    ]


@pytest.mark.django_db
def test_track_gold_with_attributes_and_relations_from_our_cvat_and_coco_exports(
    world_factory, client_for
):
    world = world_factory(
        n=2,
        overlap=1,
        annotation_type="track",
        label_attributes=ATTRIBUTES,
        relation_predicates=["rides"],
        segment=5,
    )
    mt = world.regular()[0]
    frames = {
        f: [
            exports.ExportObject("person", 10, 10, 20, 40, track_id=1, relations=(("rides", 1),)),
            exports.ExportObject(
                "car", 5 + f, 30, 60, 30, track_id=2,
                attributes={"colour": "blue" if f < 2 else "red", "occluded": False},
            ),
        ]
        for f in world.frames_of(mt)
    }  # fmt: skip
    video = exports.ExportVideo(name="v", width=WIDTH, height=HEIGHT, frame_count=50, frames=frames)
    client = client_for(world.job.requester)
    xml = b"".join(exports.iter_cvat_video(video, ["car", "person"], label_attributes=ATTRIBUTES))
    r = _post(client, world.job, "cvat", xml.decode())
    assert r.status_code == 201, r.content
    answer = GoldAnswer.objects.get(microtask=mt)
    colours = {
        f: next(s for s in answer.frames[str(f)] if s["label"] == "car")["attributes"]["colour"]
        for f in world.frames_of(mt)
    }
    # The colour changes at frame 2, a keyframe's change carried forward.
    assert [colours[f] for f in sorted(colours)] == ["blue", "blue", "red", "red", "red"]
    assert not any("relations" in s for shs in answer.frames.values() for s in shs)  # CVAT has none

    GoldAnswer.objects.all().delete()
    MicroTask.objects.filter(pk=mt.pk).update(is_gold=False)
    r = _post(client, world.job, "coco", exports.to_coco([video], ["car", "person"]).decode())
    assert r.status_code == 201, r.content
    answer = GoldAnswer.objects.get(microtask=mt)
    assert answer.payload["relations"] == [{"subject": 1, "predicate": "rides", "object": 2}]
    first = answer.frames[str(world.frames_of(mt)[0])]
    person = next(s for s in first if s["label"] == "person")
    car_index = next(i for i, s in enumerate(first) if s["label"] == "car")
    assert person["relations"] == [{"predicate": "rides", "object": car_index}]


@pytest.mark.django_db
def test_the_report_page_imports_activitynet_events(world_factory, client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    world = world_factory(
        n=1, overlap=1, annotation_type="event", label_classes=["crossing"], segment=10
    )
    (mt,) = world.regular()
    client.force_login(world.job.requester)
    report = client.get(f"/quality/jobs/{world.job.pk}/").content.decode()
    assert 'value="activitynet"' in report
    url = f"/quality/jobs/{world.job.pk}/gold/import/"
    entry = {"annotations": [{"segment": [0.1, 0.2], "frames": [1, 4], "label": "crossing"}]}
    bad = {"database": {f"video-{mt.video_id}": {"annotations": [{"label": "crossing"}]}}}
    r = client.post(
        url,
        {"format": "activitynet", "file": SimpleUploadedFile("gt.json", json.dumps(bad).encode())},
        follow=True,
    )
    flash = re.findall(r'<p class="flash[^"]*">([^<]*)</p>', r.content.decode())
    assert flash, r.content.decode()[:3000]
    assert flash[0] == (
        f"The file&#x27;s database.video-{mt.video_id}.annotations[0].segment must be "
        "[start, end] seconds, start ≤ end."
    ), flash
    assert not GoldAnswer.objects.exists()
    good = {"database": {f"video-{mt.video_id}": entry}}
    r = client.post(
        url,
        {"format": "activitynet", "file": SimpleUploadedFile("gt.json", json.dumps(good).encode())},
        follow=True,
    )
    assert "1 microtasks are now gold." in r.content.decode()
    assert GoldAnswer.objects.get(microtask=mt).payload == {
        "events": [{"label": "crossing", "start": 1, "end": 4}]
    }


@pytest.mark.django_db
def test_track_events_from_activitynet_join_the_imported_tracks(world_factory, client_for):
    world = world_factory(
        n=2, overlap=1, annotation_type="track", segment=5, event_labels=["crossing"]
    )
    first = world.regular()[0]
    lines = []
    for f in range(5):  # tracks of the first microtask (frames 0-4)
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
    tid = int(world.scene_truth_range(0, 0)[0].ids[0])
    entry = {
        "fps": 30,
        "annotations": [
            {"segment": [0, 0], "frames": [1, 3], "label": "crossing", "track_id": tid},
            {"segment": [0, 0], "frames": [1, 3], "label": "crossing", "track_id": 999},
        ],
    }
    doc = {"database": {f"video-{first.video_id}": entry}}
    wrong = json.loads(json.dumps(doc))
    wrong["database"][f"video-{first.video_id}"]["annotations"][0]["label"] = "waving"
    bad = _post(client, world.job, "activitynet", wrong)
    assert bad.status_code == 400 and "event labels" in bad.json()["error"]["message"]
    assert "events" not in GoldAnswer.objects.get(microtask=first).payload

    r = _post(client, world.job, "activitynet", doc)
    assert r.status_code == 201, r.content
    assert r.json()["gold_microtasks"] == [first.pk]  # the other microtask has no gold tracks
    answer = GoldAnswer.objects.get(microtask=first)
    assert answer.payload["events"] == [
        {"label": "crossing", "start": 1, "end": 3, "track": tid}
    ]  # the event of a track this microtask does not have is not its
    assert answer.payload["tracks"]
    marked = [s for shs in answer.frames.values() for s in shs if "event" in s]
    assert sorted({s["track"] for s in marked}) == [tid] and len(marked) == 3
