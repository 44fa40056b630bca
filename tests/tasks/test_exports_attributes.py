"""Attributes and relations in the exports (pure): COCO ``attributes`` and a top-level
``relations`` list read back by pycocotools; CVAT for video 1.1 ``<attribute>`` elements."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

from pycocotools.coco import COCO

from tasks import exports

SCHEMA = {
    "car": [
        {"name": "parked", "type": "bool"},
        {"name": "colour", "type": "choice", "values": ["red", "blue"]},
        {"name": "speed", "type": "number", "min": 0, "max": 200},
    ]
}


def _video() -> exports.ExportVideo:
    person = exports.ExportObject("person", 5, 5, 10, 20, relations=(("rides", 1),))
    car = exports.ExportObject(
        "car", 0, 10, 40, 20, attributes={"parked": False, "colour": "blue", "speed": 12.5}
    )
    plain = exports.ExportObject("car", 50, 50, 10, 10)
    return exports.ExportVideo(
        "v", 100, 100, 10, frames={0: [plain], 3: [person, car], 4: [person, car]}
    )


def test_coco_carries_attributes_and_relations_and_pycocotools_reads_it():
    doc = json.loads(b"".join(exports.iter_coco([_video()], ["car", "person"])))
    coco = COCO()
    coco.dataset = doc
    coco.createIndex()
    assert len(coco.getAnnIds()) == 5
    cars = [a for a in coco.loadAnns(coco.getAnnIds()) if a["attributes"].get("colour")]
    assert [a["attributes"] for a in cars] == [
        {"occluded": False, "parked": False, "colour": "blue", "speed": 12.5}
    ] * 2
    assert len(doc["relations"]) == 2
    for rel in doc["relations"]:
        subject, obj = coco.anns[rel["subject_id"]], coco.anns[rel["object_id"]]
        assert rel["predicate"] == "rides"
        assert subject["image_id"] == obj["image_id"] == rel["image_id"]
        assert coco.cats[subject["category_id"]]["name"] == "person"
        assert obj["attributes"]["colour"] == "blue"


def test_coco_without_relations_has_no_relations_key():
    video = exports.ExportVideo(
        "v", 10, 10, 1, frames={0: [exports.ExportObject("car", 1, 1, 2, 2)]}
    )
    doc = json.loads(b"".join(exports.iter_coco([video], ["car"])))
    assert "relations" not in doc and doc["annotations"][0]["attributes"] == {"occluded": False}


def test_cvat_declares_attributes_per_label_and_gives_them_per_shape():
    xml = b"".join(exports.iter_cvat_video(_video(), ["car", "person"], label_attributes=SCHEMA))
    root = ET.fromstring(xml)
    labels = {lab.findtext("name"): lab for lab in root.iter("label")}
    declared = [
        (
            a.findtext("name"),
            a.findtext("mutable"),
            a.findtext("input_type"),
            a.findtext("default_value"),
            a.findtext("values"),
        )
        for a in labels["car"].iter("attribute")
    ]
    assert declared == [
        ("parked", "True", "checkbox", "false", "false"),
        ("colour", "True", "select", "red", "red\nblue"),
        ("speed", "True", "number", "0", "0\n200\n1"),
    ]
    assert list(labels["person"].iter("attribute")) == []
    shapes = [b for t in root.iter("track") for b in t.iter("box") if b.get("outside") == "0"]
    given = [{a.get("name"): a.text for a in b.iter("attribute")} for b in shapes]
    assert {"parked": "false", "colour": "blue", "speed": "12.5"} in given
    assert given.count({}) == 3  # the plain car and the two persons
