"""The base of every peer endpoint: signed requests in, signed answers out."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from security import signing
from security.authentication import VERIFIED_ATTRIBUTE, IsPeer, PeerSignatureAuthentication


class PeerAPIView(APIView):
    """An endpoint only the other site may call; every answer to it is signed.

    Answers to requests that failed authentication (401) are not signed: there is no
    verified request signature to bind them to, and the peer does not trust them beyond
    reading the reason.
    """

    authentication_classes = [PeerSignatureAuthentication]
    permission_classes = [IsPeer]
    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser]

    def finalize_response(
        self, request: Request, response: HttpResponse, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        response = super().finalize_response(request, response, *args, **kwargs)
        django_request = request._request
        verified: signing.VerifiedSignature | None = getattr(
            django_request, VERIFIED_ATTRIBUTE, None
        )
        if verified is None:
            return response
        if response.streaming:
            signing.sign_stream_response(response, django_request, verified.key)
            return response

        def sign(rendered: HttpResponse) -> None:
            signing.sign_response(rendered, django_request, verified.key)

        # A DRF Response is rendered after this method returns; sign the final bytes.
        if getattr(response, "is_rendered", True):
            sign(response)
        else:
            response.add_post_render_callback(sign)
        return response
