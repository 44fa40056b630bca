"""Worker API: a qualification test's questions (GET) and scoring the answers (POST).

Here, above tasks, because scoring a test is quality's (``quality.qualifying``); the route, its
name (``api-work-qualification``) and its responses are those of the worker API it belongs to
(``tasks.api.work``, whose authentication it shares), and the questions are served by the same
whitelist the page embeds (``tasks.qualifying.question_for_worker``).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.api.permissions import IsWorker
from marketplace.errors import NotFound, ValidationError
from marketplace.models import AnnotationType, QualificationStatus
from tasks import qualifying as tasks_qualifying
from tasks.api.schemas import AnnotationPayloadField, QualificationTestSerializer
from tasks.api.work import WORKER_AUTH, worker_errors

from .. import qualifying

# More answers than any test has questions is not a test attempt; refuse it before scoring.
QUALIFICATION_ANSWERS_MAX = 200


class QualificationInput(serializers.Serializer):
    answers = serializers.DictField(
        child=AnnotationPayloadField(),
        help_text=f"{{question id: payload}}, at most {QUALIFICATION_ANSWERS_MAX} answers",
    )


def _annotation_type(value: str) -> str:
    if value not in AnnotationType.values:
        raise NotFound(f"No qualification for {value!r}.")
    return value


class QualificationResultSerializer(serializers.Serializer):
    annotation_type = serializers.ChoiceField(choices=AnnotationType.choices)
    status = serializers.ChoiceField(choices=QualificationStatus.choices)
    score = serializers.FloatField(help_text="Mean score of this attempt, 0-1")
    attempts = serializers.IntegerField(help_text="Attempts used so far")


class QualificationTestView(APIView):
    """GET the questions of a qualification test; POST your answers to be scored."""

    permission_classes = [IsWorker]
    authentication_classes = WORKER_AUTH

    @extend_schema(
        responses={
            200: QualificationTestSerializer,
            **worker_errors(e404="No such annotation type"),
        }
    )
    def get(self, request, annotation_type: str):
        kind = _annotation_type(annotation_type)
        items = tasks_qualifying.qualification_items(annotation_type=kind)
        questions = [tasks_qualifying.question_for_worker(i) for i in items]
        return Response({"annotation_type": kind, "questions": questions})

    @extend_schema(
        request=QualificationInput,
        responses={
            200: QualificationResultSerializer,
            **worker_errors(
                e400="Some answers are not valid (field by field)",
                e403="all attempts are used, or you are suspended from this type of work "
                "(code `suspended`: the message and `suspended_until` say until when)",
                e404="No such annotation type",
                e409="Already passed, or there is no test for this type yet",
            ),
        },
    )
    def post(self, request, annotation_type: str):
        kind = _annotation_type(annotation_type)
        answers = request.data.get("answers") if isinstance(request.data, dict) else None
        if not isinstance(answers, dict):
            raise ValidationError(
                'Send {"answers": {"<question id>": payload}}.',
                extra={"fields": {"answers": ["must be an object"]}},
            )
        if len(answers) > QUALIFICATION_ANSWERS_MAX:
            raise ValidationError(
                f"Send at most {QUALIFICATION_ANSWERS_MAX} answers.",
                extra={"fields": {"answers": [f"at most {QUALIFICATION_ANSWERS_MAX} answers"]}},
            )
        result = qualifying.qualification_submit(
            worker=request.user, annotation_type=kind, responses=answers
        )
        q = result.qualification
        return Response(
            {
                "annotation_type": kind,
                "status": q.status,
                "score": round(q.score or 0.0, 4),
                "attempts": q.attempts,
            }
        )
