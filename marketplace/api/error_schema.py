"""The one error shape (``marketplace.api.errors``) as a schema, for ``extend_schema`` responses.

Routes list every status they return with this body, so the OpenAPI document tells clients what
a 400/403/404/409 looks like.
"""

from __future__ import annotations

from rest_framework import serializers


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField(help_text="What went wrong, in words a person can act on")
    fields = serializers.DictField(required=False, help_text="Field name -> its problems")


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


ERROR = ErrorSerializer
