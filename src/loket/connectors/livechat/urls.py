from django.urls import path

from loket.connectors.livechat import views

urlpatterns = [
    path("<str:channel_uuid>.js", views.loader, name="livechat-loader"),
    path("<str:channel_uuid>/frame/", views.frame, name="livechat-frame"),
    path("<str:channel_uuid>/api/session", views.session, name="livechat-session"),
    path("<str:channel_uuid>/api/messages", views.messages, name="livechat-messages"),
    path("<str:channel_uuid>/api/prechat", views.prechat, name="livechat-prechat"),
    path("<str:channel_uuid>/api/read", views.read, name="livechat-read"),
    path("<str:channel_uuid>/api/csat", views.csat, name="livechat-csat"),
    path("<str:channel_uuid>/photos/<int:index>", views.photo, name="livechat-photo"),
    path(
        "<str:channel_uuid>/agents/<int:member_id>/photo",
        views.agent_photo,
        name="livechat-agent-photo",
    ),
    path("<str:channel_uuid>/api/files", views.files, name="livechat-files"),
    path("<str:channel_uuid>/api/files/<int:attachment_id>", views.file, name="livechat-file"),
]
