"""``/w/<slug>/settings/…`` (namespace ``wsettings``); invitations are mounted beside these."""

from django.urls import path

from loket.web.workspace_settings import autoreplies, macros, rules, sla, views

urlpatterns = [
    path("", views.index, name="index"),
    path("members/", views.members, name="members"),
    path("members/<int:member_id>/", views.member_update, name="member-update"),
    path("members/<int:member_id>/remove/", views.member_remove, name="member-remove"),
    path("members/<int:member_id>/hours/", views.member_hours, name="member-hours"),
    path("teams/", views.teams, name="teams"),
    path("teams/<int:team_id>/", views.team_edit, name="team-edit"),
    path("teams/<int:team_id>/delete/", views.team_delete, name="team-delete"),
    path("labels/", views.labels, name="labels"),
    path("labels/<int:label_id>/", views.label_update, name="label-update"),
    path("labels/<int:label_id>/delete/", views.label_delete, name="label-delete"),
    path("channels/", views.channels, name="channels"),
    path("channels/<int:channel_id>/", views.channel_edit, name="channel-edit"),
    path("channels/<int:channel_id>/active/", views.channel_active, name="channel-active"),
    path("channels/<int:channel_id>/check/", views.channel_check, name="channel-check"),
    path(
        "channels/<int:channel_id>/templates/sync/",
        views.channel_templates_sync,
        name="channel-templates-sync",
    ),
    path("channels/<int:channel_id>/hours/", autoreplies.channel_hours, name="channel-hours"),
    path("auto-replies/", autoreplies.auto_replies, name="auto-replies"),
    path("macros/", macros.macro_list, name="macros"),
    path("macros/new/", macros.macro_new, name="macro-new"),
    path("macros/<int:macro_id>/", macros.macro_edit, name="macro-edit"),
    path("macros/<int:macro_id>/delete/", macros.macro_delete, name="macro-delete"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:token_id>/revoke/", views.token_revoke, name="token-revoke"),
    path("canned-replies/", views.canned_replies, name="canned-replies"),
    path("canned-replies/<int:reply_id>/", views.canned_reply_edit, name="canned-reply-edit"),
    path(
        "canned-replies/<int:reply_id>/delete/",
        views.canned_reply_delete,
        name="canned-reply-delete",
    ),
    path("sla-policies/", sla.sla_policies, name="sla-policies"),
    path("sla-policies/<int:policy_id>/", sla.sla_policy_edit, name="sla-policy-edit"),
    path("sla-policies/<int:policy_id>/delete/", sla.sla_policy_delete, name="sla-policy-delete"),
    path("rules/", rules.rules, name="rules"),
    path("rules/new/", rules.rule_new, name="rule-new"),
    path("rules/test/", rules.rule_test, name="rule-test"),
    path("rules/<int:rule_id>/", rules.rule_edit, name="rule-edit"),
    path("rules/<int:rule_id>/delete/", rules.rule_delete, name="rule-delete"),
    path("rules/<int:rule_id>/move/", rules.rule_move, name="rule-move"),
    path("rules/<int:rule_id>/enabled/", rules.rule_enabled, name="rule-enabled"),
]
