"""factory_boy factories shared by the whole suite."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone

from marketplace.models import (
    AnnotationType,
    Job,
    RequesterProfile,
    Role,
    User,
    WorkerProfile,
)
from tasks.models import Assignment, MicroTask, Video, VideoStatus


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    role = Role.WORKER
    password = factory.PostGenerationMethodCall("set_password", "pass-word-123")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class RequesterFactory(UserFactory):
    role = Role.REQUESTER
    profile = factory.RelatedFactory(
        "tests.factories.RequesterProfileFactory", factory_related_name="user"
    )


class WorkerFactory(UserFactory):
    role = Role.WORKER
    profile = factory.RelatedFactory(
        "tests.factories.WorkerProfileFactory", factory_related_name="user"
    )


class AdminFactory(UserFactory):
    role = Role.ADMIN
    is_staff = True
    is_superuser = True


class RequesterProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RequesterProfile

    organisation = "Acme AI"


class WorkerProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WorkerProfile

    country = "US"


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Job

    requester = factory.SubFactory(RequesterFactory)
    title = factory.Sequence(lambda n: f"Label cars {n}")
    instructions = "Draw a tight box around every car."
    annotation_type = AnnotationType.BBOX
    label_classes = factory.LazyFunction(lambda: ["car", "person"])
    budget = 100_000
    currency = "usd"


class VideoFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Video

    job = factory.SubFactory(JobFactory)
    file = factory.django.FileField(filename="clip.mp4", data=b"not decoded in this factory")
    original_name = "clip.mp4"
    status = VideoStatus.READY
    width = 640
    height = 360
    fps = 30.0
    frame_count = 300


class MicroTaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MicroTask

    video = factory.SubFactory(VideoFactory)
    job = factory.SelfAttribute("video.job")
    index = factory.Sequence(lambda n: n)
    frame_start = 0
    frame_end = 9
    frames = factory.LazyFunction(lambda: list(range(10)))
    price = 50
    replica_target = 3


class AssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Assignment

    microtask = factory.SubFactory(MicroTaskFactory)
    worker = factory.SubFactory(WorkerFactory)
    claimed_at = factory.LazyFunction(timezone.now)
    deadline = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=30))
