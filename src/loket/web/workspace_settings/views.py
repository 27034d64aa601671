from django.shortcuts import render

from loket.web.workspace import workspace_view


@workspace_view
def index(request):
    return render(request, "web/workspace_settings/index.html")
