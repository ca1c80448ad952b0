"""Reports over REST: list with the same filters as the Reports tab, create, read, download.

Authentication and permission come from the REST_FRAMEWORK defaults: a token
or a session of an account with administrative rights.
"""

from __future__ import annotations

from django import forms
from django.db.models import QuerySet
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.views import APIView

from appliance.api.serializers import AuditEventSerializer, ReportSerializer
from appliance.audit import AuditFilterForm
from appliance.models import AuditEvent, Report
from appliance.reports import ReportFilterForm, recording_response


def filter_parameters(form: type[forms.Form] = ReportFilterForm) -> list[OpenApiParameter]:
    """A list's query parameters, described from its filter form so the two cannot drift."""
    parameters = []
    for name, field in form.base_fields.items():
        is_date = isinstance(field, forms.DateField)
        choices = getattr(field, "choices", None)
        parameters.append(
            OpenApiParameter(
                name,
                OpenApiTypes.DATETIME
                if isinstance(field, forms.DateTimeField)
                else OpenApiTypes.DATE
                if is_date
                else OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                description=f"{field.label}. {field.help_text}".strip(),
                enum=[value for value, _ in choices if value] if choices else None,
            )
        )
    return parameters


@extend_schema_view(
    get=extend_schema(
        summary="List reports",
        parameters=filter_parameters(),
        description="Newest first unless `sort=started_at`. Bad filters give 400 with a reason "
        "per parameter.",
    ),
    post=extend_schema(
        summary="Create a report",
        description="Send JSON, or multipart/form-data to upload a recording with the report.",
    ),
)
class ReportListCreate(generics.ListCreateAPIView):
    serializer_class = ReportSerializer
    parser_classes = [JSONParser, MultiPartParser]
    queryset = Report.objects.all()

    def filter_queryset(self, queryset: QuerySet[Report]) -> QuerySet[Report]:
        form = ReportFilterForm(self.request.query_params)
        if not form.is_valid():
            raise ValidationError({name: list(errors) for name, errors in form.errors.items()})
        return form.filter(queryset)


@extend_schema_view(get=extend_schema(summary="Read one report"))
class ReportDetail(generics.RetrieveAPIView):
    serializer_class = ReportSerializer
    queryset = Report.objects.all()
    lookup_field = "uuid"


class ReportRecording(APIView):
    @extend_schema(
        summary="Download a report's recording",
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The recording, as an attachment."
            ),
            404: OpenApiResponse(description="No such report, or it has no recording."),
        },
    )
    def get(self, request: Request, uuid: str) -> FileResponse:
        return recording_response(get_object_or_404(Report, uuid=uuid))


@extend_schema_view(
    get=extend_schema(
        summary="List the audit trail",
        parameters=filter_parameters(AuditFilterForm),
        description="Newest first, the same events and filters as Management > Audit trail. "
        "`action` is one of the actions recorded so far. Bad filters give 400 with a reason "
        "per parameter.",
    )
)
class AuditEventList(generics.ListAPIView):
    serializer_class = AuditEventSerializer
    queryset = AuditEvent.objects.all()

    def filter_queryset(self, queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        form = AuditFilterForm(self.request.query_params)
        if not form.is_valid():
            raise ValidationError({name: list(errors) for name, errors in form.errors.items()})
        return form.filter(queryset)
