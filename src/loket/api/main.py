"""The REST API: /api/v1/, OpenAPI at /api/v1/openapi.json, Bearer tokens per workspace.

Errors are always JSON: ``{"error": {"code": "...", "message": "..."}}``.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer

from loket.inbox.selectors import BadCursor
from loket.inbox.services.conversations import InvalidChange
from loket.tenancy.services import authenticate_token


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        api_token = authenticate_token(token)
        if api_token is None:
            return None
        request.membership = api_token.membership
        return api_token


api = NinjaAPI(
    title="Loket API",
    version="1",
    urls_namespace="api-v1",
    auth=TokenAuth(),
    docs_url="/docs",
)


def error(request, status: int, code: str, message: str, **extra):
    return api.create_response(
        request, {"error": {"code": code, "message": message, **extra}}, status=status
    )


@api.exception_handler(Http404)
def not_found(request, exc):
    return error(request, 404, "not_found", str(exc) or "not found")


@api.exception_handler(AuthenticationError)
def unauthorized(request, exc):
    response = error(
        request, 401, "unauthorized", "a valid 'Authorization: Bearer <token>' is required"
    )
    response["WWW-Authenticate"] = 'Bearer realm="loket"'  # RFC 6750
    return response


def _field(loc) -> str:
    """'status' for ("query", "status") and for ("body", "data", "status"): the source and the
    view's parameter name are not the client's business."""
    parts = [str(p) for p in loc]
    if parts[:1] == ["body"]:
        return ".".join(parts[2:]) or "body"
    return ".".join(parts[1:])


@api.exception_handler(ValidationError)
def invalid(request, exc):
    details = [{"field": _field(e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors]
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details) or "invalid request"
    return error(request, 400, "invalid", summary, details=details)


# Codes for HttpErrors raised by django-ninja itself (e.g. a body that is not JSON).
_CODES = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 429: "throttled"}  # fmt: skip


@api.exception_handler(HttpError)
def http_error(request, exc):
    code = getattr(exc, "code", None) or _CODES.get(exc.status_code, "error")
    return error(request, exc.status_code, code, str(exc))


@api.exception_handler(BadCursor)
def bad_cursor(request, exc):
    return error(request, 400, "bad_cursor", str(exc))


@api.exception_handler(InvalidChange)
def invalid_change(request, exc):
    return error(request, 400, "invalid", str(exc))


class ApiError(HttpError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, message)
        self.code = code


def _routers() -> None:
    from loket.api import (
        ai,
        auto_replies,
        canned_replies,
        channels,
        contacts,
        conversations,
        flows,
        inbound_events,
        knowledge,
        macros,
        report_exports,
        report_schedules,
        reports,
        rules,
        sla,
        suggestions,
    )

    api.add_router("/channels", channels.router)
    api.add_router("/conversations", conversations.router)
    api.add_router("/contacts", contacts.router)
    api.add_router("/inbound-events", inbound_events.router)
    api.add_router("", canned_replies.router)  # /canned-replies, /conversations/…/render
    api.add_router("/auto-replies", auto_replies.router)
    api.add_router("", rules.router)  # /rules, /conversations/…/rule-runs
    api.add_router("/sla-policies", sla.router)
    api.add_router("", macros.router)  # /macros, /conversations/…/macros/…/run
    api.add_router("", flows.router)  # /flows
    api.add_router("", knowledge.router)  # /knowledge/…
    api.add_router("", suggestions.router)  # /conversations/…/suggestions, /knowledge/…
    api.add_router("", ai.router)  # /conversations/…/ai/draft|summary, /ai/translate
    api.add_router("", reports.router)  # /reports/…
    api.add_router("", report_exports.router)  # /reports/export/…
    api.add_router("", report_schedules.router)  # /reports/schedules


_routers()


def not_found_view(request, rest: str = ""):
    """Unknown paths under /api/v1/ answer in the API's JSON error shape."""
    from django.http import JsonResponse

    return JsonResponse(
        {"error": {"code": "not_found", "message": f"no API route {request.path}"}}, status=404
    )
