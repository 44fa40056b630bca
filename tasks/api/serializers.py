"""Serializers of the ingestion API (videos, progress, microtask manifests for requesters)."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from tasks.ingestion_selectors import manifest_with_urls
from tasks.models import MicroTask, Video


class VideoSerializer(serializers.ModelSerializer):
    microtask_count = serializers.IntegerField(read_only=True, default=None)

    class Meta:
        model = Video
        fields = [
            "id",
            "job",
            "original_name",
            "size_bytes",
            "checksum",
            "status",
            "stage",
            "progress",
            "failure_reason",
            "container",
            "codec",
            "width",
            "height",
            "fps",
            "frame_count",
            "duration",
            "rotation",
            "variable_frame_rate",
            "shot_boundaries",
            "bad_packets",
            "frame_width",
            "frame_height",
            "attempts",
            "microtask_count",
            "created_at",
            "updated_at",
            "ingested_at",
        ]
        read_only_fields = fields


class VideoUploadSerializer(serializers.Serializer):
    def get_fields(self) -> dict[str, serializers.Field]:
        most = settings.VIDEO_UPLOAD_MAX_FILES  # read per request, not at import
        return {
            "file": serializers.ListField(
                child=serializers.FileField(allow_empty_file=True),
                allow_empty=False,
                min_length=1,  # the schema's minItems (allow_empty alone does not say it)
                max_length=most,
                help_text=f"One to {most} video files (repeat the `file` part).",
            )
        }


class RefusedFileSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The file's name as uploaded")
    code = serializers.CharField(help_text="`not_a_video`, `too_large`, `duplicate_video`, ...")
    message = serializers.CharField(help_text="Why it was not added, for a person to act on")


class VideoUploadResultSerializer(serializers.Serializer):
    videos = VideoSerializer(many=True, help_text="The files added, in upload order")
    refused = RefusedFileSerializer(many=True, help_text="The files not added, and why")


class ManifestFrameSerializer(serializers.Serializer):
    frame = serializers.IntegerField()
    time = serializers.FloatField(help_text="Seconds from the start of the video")
    image = serializers.CharField(help_text="Storage name")
    url = serializers.CharField(
        allow_null=True, help_text="Where the image is served (null: a frame without one)"
    )


class MicroTaskSerializer(serializers.ModelSerializer):
    """A microtask as its requester sees it, with the frames' image URLs."""

    manifest = serializers.SerializerMethodField()

    class Meta:
        model = MicroTask
        fields = [
            "id",
            "job",
            "video",
            "index",
            "frame_start",
            "frame_end",
            "frames",
            "keyframe_step",
            "motion",
            "clutter",
            "complexity",
            "expected_objects",
            "price",
            "replica_target",
            "status",
            "manifest",
        ]
        read_only_fields = fields

    def get_manifest(self, obj: MicroTask) -> dict:
        return manifest_with_urls(obj.manifest)


class IngestionVideoSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    original_name = serializers.CharField()
    status = serializers.CharField()
    stage = serializers.CharField()
    progress = serializers.FloatField()
    failure_reason = serializers.CharField()


class IngestionProgressSerializer(serializers.Serializer):
    job = serializers.IntegerField()
    status = serializers.CharField()
    failure_reason = serializers.CharField()
    videos_total = serializers.IntegerField()
    videos_ready = serializers.IntegerField()
    videos_failed = serializers.IntegerField()
    progress = serializers.FloatField(help_text="Mean percent over the job's videos")
    microtasks = serializers.IntegerField()
    videos = IngestionVideoSerializer(many=True)
