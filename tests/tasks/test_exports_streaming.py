"""COCO written video by video (``tasks.exports.write_coco``): the same bytes as ``to_coco``,
whether its annotations stay in memory or spill to disk."""

from __future__ import annotations

import io
import json

from tasks.exports import ExportObject, ExportVideo, to_coco, write_coco


def _videos() -> list[ExportVideo]:
    return [
        ExportVideo(
            name=f"video-{v}", width=640, height=360, frame_count=100,
            frames={f: [ExportObject("car", 1.5 * f, 2, 30, 40, track_id=f % 3),
                        ExportObject("person", 5, 6, 7, 8, score=0.5)]
                    for f in range(0, 30, 3)},
            image_names={99: f"video-{v}/last.jpg"},
        )
        for v in range(3)
    ]  # fmt: skip


def test_written_coco_is_to_coco_byte_for_byte_in_memory_or_spilled():
    expected = to_coco(_videos(), ["car", "person"], description="d")
    for spool in (10**9, 64):  # all in memory; spilled to disk after 64 bytes
        out = io.BytesIO()
        write_coco(iter(_videos()), ["car", "person"], out, description="d", spool_bytes=spool)
        assert out.getvalue() == expected
    doc = json.loads(expected)
    assert [len(doc[k]) for k in ("images", "annotations", "categories")] == [33, 60, 2]
    assert [a["id"] for a in doc["annotations"]] == list(range(1, 61))
    assert {a["image_id"] for a in doc["annotations"]} <= {i["id"] for i in doc["images"]}
    assert doc["images"][10]["file_name"] == "video-0/last.jpg"


def test_an_empty_export_is_a_valid_document():
    doc = json.loads(to_coco([], ["car"]))
    assert (doc["images"], doc["annotations"], doc["categories"][0]["name"]) == ([], [], "car")
