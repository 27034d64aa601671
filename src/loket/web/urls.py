"""The agent app, per workspace: ``/w/<slug>/…``. Each area owns its URLs and namespace."""

from django.urls import include, path

from loket.web import demo_api

urlpatterns = [
    path("", include(("loket.web.inbox.urls", "inbox"))),
    path("contacts/", include(("loket.web.contacts.urls", "contacts"))),
    path("search/", include(("loket.web.search.urls", "search"))),
    path("reports/", include(("loket.web.reports.urls", "reports"))),
    path("settings/invitations/", include(("loket.accounts.invitation_urls", "invitations"))),
    path("settings/", include(("loket.web.workspace_settings.urls", "wsettings"))),
    path("demo/ferry/bookings/<str:code>", demo_api.ferry_booking, name="demo_ferry_booking"),
]
