"""Demo endpoints: a tiny stand-in for a business's own API, for the demo workspace's bot.

``GET /w/demo/demo/ferry/bookings/<code>`` answers a ferry booking from a small fixed table:

    {"booking": {"code": "FB123456", "route": "Den Helder → Texel", "departure": "14:30",
                 "ship": "MS Texel", "date": "2026-06-12", "passengers": 2}}

and 404 ``{"error": "not found"}`` for any other code. It exists only while
``settings.LOKET_DEMO_ENDPOINTS`` is on (default: on in embedded mode, off with DATABASE_URL)
and only for the ``demo`` workspace (``loket demo`` seeds it); otherwise every request is a 404.
No login: the bot's HTTP step calls it like it would call a business's API. The data is made up.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, JsonResponse
from django.views.decorators.http import require_GET

from loket.tenancy.models import Workspace

DEMO_SLUG = "demo"
ROUTE = "Den Helder → Texel"

# The demo's bookings: code -> (departure, ship, date, passengers).
BOOKINGS: dict[str, tuple[str, str, str, int]] = {
    "FB123456": ("14:30", "MS Texel", "2026-06-12", 2),
    "FB654321": ("09:30", "MS Dokter Wagemaker", "2026-06-13", 4),
    "TX240601": ("18:30", "MS Texelstroom", "2026-06-01", 1),
}


def booking(code: str) -> dict | None:
    found = BOOKINGS.get(code.strip().upper())
    if found is None:
        return None
    departure, ship, date, passengers = found
    return {
        "code": code.strip().upper(),
        "route": ROUTE,
        "departure": departure,
        "ship": ship,
        "date": date,
        "passengers": passengers,
    }


@require_GET
def ferry_booking(request, workspace: str, code: str):
    if (
        not settings.LOKET_DEMO_ENDPOINTS
        or workspace != DEMO_SLUG
        or not Workspace.objects.filter(slug=DEMO_SLUG).exists()
    ):
        raise Http404("no demo endpoints here")
    found = booking(code)
    if found is None:
        return JsonResponse({"error": "not found"}, status=404)
    return JsonResponse({"booking": found}, json_dumps_params={"ensure_ascii": False})
