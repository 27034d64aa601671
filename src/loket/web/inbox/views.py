from django.shortcuts import render

from loket.web.workspace import workspace_view


@workspace_view
def index(request, number=None):
    return render(request, "web/inbox/index.html")


@workspace_view
def conversation_list(request):
    return render(request, "web/inbox/index.html")


@workspace_view
def counts(request):
    return render(request, "web/inbox/index.html")


@workspace_view
def notifications(request):
    return render(request, "web/inbox/index.html")


@workspace_view
def preferences(request):
    return render(request, "web/inbox/index.html")
