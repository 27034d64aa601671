from django.urls import path

from loket.web.inbox import macros, suggestions, views

urlpatterns = [
    path("", views.index, name="index"),
    path("inbox/list/", views.conversation_list, name="list"),
    path("inbox/counts/", views.counts, name="counts"),
    path("inbox/bulk/", views.bulk, name="bulk"),
    path("inbox/views/", views.save_view, name="save_view"),
    path("inbox/views/<int:view_id>/delete/", views.delete_view, name="delete_view"),
    path("inbox/merges/<int:merge_id>/undo/", views.undo_merge, name="undo_merge"),
    path("inbox/<int:number>/", views.index, name="conversation"),
    path("inbox/<int:number>/pane/", views.conversation_pane, name="pane"),
    path("inbox/<int:number>/head/", views.conversation_head, name="head"),
    path("inbox/<int:number>/timeline/", views.timeline_after, name="timeline"),
    path("inbox/<int:number>/send/", views.send, name="send"),
    path("inbox/<int:number>/draft/", views.save_draft, name="draft"),
    path("inbox/<int:number>/update/", views.update, name="update"),
    path("inbox/<int:number>/merge/", views.merge, name="merge"),
    path("inbox/<int:number>/take-over/", views.take_over, name="take_over"),
    path("inbox/<int:number>/canned-replies/", views.canned_replies, name="canned_replies"),
    path(
        "inbox/<int:number>/canned-replies/<int:reply_id>/",
        views.canned_reply,
        name="canned_reply",
    ),
    path("inbox/<int:number>/macros/", macros.menu, name="macros"),
    path("inbox/<int:number>/suggestions/", suggestions.panel, name="suggestions"),
    path(
        "inbox/<int:number>/suggestions/feedback/",
        suggestions.feedback,
        name="suggestion_feedback",
    ),
    path("inbox/<int:number>/macros/<int:macro_id>/run/", macros.run, name="macro_run"),
    path("inbox/<int:number>/messages/<int:message_id>/", views.message_fragment, name="message"),
    path("inbox/<int:number>/messages/<int:message_id>/retry/", views.retry, name="retry"),
    path("inbox/<int:number>/messages/<int:message_id>/split/", views.split, name="split"),
    path("messages/<int:message_id>/body/", views.message_html, name="message_html"),
    path("attachments/<int:attachment_id>/", views.attachment, name="attachment"),
    path("notifications/", views.notifications, name="notifications"),
    path("me/", views.preferences, name="preferences"),
    path("me/hours/", views.working_hours, name="working_hours"),
]
