"""A token of workspace A can neither see nor touch anything of workspace B, on any route.

The routes are not listed here: they are read from the API itself (its Django URL patterns and
its OpenAPI schema), so a new route is walked automatically. A path parameter the walk does not
know how to fill makes the test fail: map it in ``PATH_OBJECTS`` (and a new ``*_id`` query or
body field in ``REFERENCE_OBJECTS``).
"""

from __future__ import annotations

import itertools
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Count
from django_tasks_db.models import DBTaskResult

from loket.api.main import api
from loket.automation.models import CannedReply, Macro, SlaPolicy
from loket.bots.models import Flow
from loket.inbox.models import Channel, Contact, Conversation, InboundEvent, Label, Message
from loket.knowledge import services as kb_services
from loket.knowledge.models import Article, ArticleTranslation, Category, SuggestionFeedback
from loket.reports import rollups, schedules
from loket.reports.models import ReportSchedule
from loket.tenancy.models import Membership, Team
from tests import factories
from tests.api.conftest import World, assert_error, call

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# Path parameter name -> the World attribute it addresses.
PATH_OBJECTS = {
    "conversation_id": "conversation",
    "contact_id": "contact",
    "message_id": "message",
    "channel_id": "channel",
    "event_id": "event",
    "reply_id": "canned_reply",
    "policy_id": "sla_policy",
    "macro_id": "macro",
    "rule_id": "rule",
    "flow_id": "flow",
    "category_id": "kb_category",
    "article_id": "kb_article",
    "schedule_id": "report_schedule",
}

# Path parameters that address no row of their own (the same value in every workspace): filled
# in as given, never part of the mix of A's and B's ids.
PATH_VALUES = {"locale": "en", "report": "overview"}

# An id referenced in a query string or a JSON body -> the World attribute it points at.
REFERENCE_OBJECTS = {
    **PATH_OBJECTS,
    "assignee_id": "agent",
    "member_id": "agent",
    "team_id": "team",
    "default_team_id": "team",
    "label_id": "label",
}

# Body fields named *_id that address no row (the option a tester picks in a flow's choice step).
NOT_OBJECTS = {"choice_id"}

# Bodies that would visibly change B's data if a route leaked; any other operation with a body
# gets a minimal valid one generated from its OpenAPI schema.
BODIES = {
    ("PATCH", "/conversations/{conversation_id}"): {
        "status": "closed",
        "priority": 4,
        "labels": ["leaked"],
    },
    ("POST", "/conversations/{conversation_id}/messages"): {"text": "leaked reply"},
    ("POST", "/channels"): {"kind": "api", "name": "Leaked", "config": {}},
    ("POST", "/knowledge/articles"): {"locale": "en", "title": "Leaked article"},
    # The caller's own article (one no route deletes): a 404 can only come from the conversation.
    ("POST", "/conversations/{conversation_id}/suggestions/feedback"): lambda world: {
        "kind": "article",
        "id": world.kb_suggested.pk,
        "verdict": "wrong",
    },
    ("POST", "/knowledge/articles/{article_id}/images"): lambda world: {
        "file": SimpleUploadedFile("pixel.gif", b"GIF89a" + bytes(32)),
    },
}

MISSING_ID = 987_654_321

_CONVERTER = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")


# -- the route list, read from the API ---------------------------------------------------------
def url_templates() -> list[str]:
    """Every distinct URL of the API as '/conversations/{conversation_id}' (below /api/v1)."""
    patterns, _app, _namespace = api.urls
    templates = []
    for pattern in patterns:
        route = "/" + str(pattern.pattern).rstrip("/")
        template = _CONVERTER.sub(lambda m: "{" + m["name"] + "}", route)
        if template not in templates:
            templates.append(template)
    return templates


def _schema() -> dict:
    return api.get_openapi_schema()


def schema_operations() -> dict[tuple[str, str], dict]:
    """(METHOD, template) -> OpenAPI operation."""
    prefix = "/api/v1"
    operations = {}
    for path, item in _schema()["paths"].items():
        template = path.removeprefix(prefix).rstrip("/") or "/"
        for method, operation in item.items():
            if method.upper() in METHODS:
                operations[(method.upper(), template)] = operation
    return operations


def path_params(template: str) -> list[str]:
    """The path parameters that address a row (see ``PATH_VALUES`` for the others)."""
    return [name for name in re.findall(r"{(\w+)}", template) if name not in PATH_VALUES]


def _resolve(schema: dict, components: dict) -> dict:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _sample(schema: dict, components: dict):
    schema = _resolve(schema, components)
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema or "oneOf" in schema:
        options = [s for s in schema.get("anyOf", schema.get("oneOf")) if s.get("type") != "null"]
        return _sample(options[0], components)
    kind = schema.get("type")
    if kind == "object":
        return {
            name: _sample(prop, components)
            for name, prop in schema.get("properties", {}).items()
            if name in schema.get("required", [])
        }
    samples = {"string": "x", "integer": 1, "number": 1, "boolean": True, "array": []}
    if kind not in samples:
        pytest.fail(f"cannot build a sample value for schema {schema!r}; add a body to BODIES")
    return samples[kind]


def body_for(method: str, template: str, operation: dict | None, world: World | None = None):
    """The body to send; a ``BODIES`` entry may be built from the caller's ``world``."""
    if (method, template) in BODIES:
        given = BODIES[(method, template)]
        return dict(given(world) if callable(given) else given)
    if method in ("GET", "DELETE"):
        return None
    if operation is None or "requestBody" not in operation:
        return {}
    components = _schema().get("components", {}).get("schemas", {})
    media = operation["requestBody"]["content"]["application/json"]
    return _sample(media["schema"], components)


def body_schema(operation: dict) -> dict:
    """The JSON body's schema ({} for a route that takes a file, not JSON)."""
    components = _schema().get("components", {}).get("schemas", {})
    media = operation["requestBody"]["content"].get("application/json")
    return _resolve(media["schema"], components) if media else {}


def fill(template: str, ids: dict[str, int]) -> str:
    values = {**PATH_VALUES, **ids}
    return re.sub(r"{(\w+)}", lambda m: str(values[m[1]]), template)


def object_for(world: World, name: str, table: dict[str, str], where: str):
    if name not in table:
        pytest.fail(
            f"{where}: the cross-workspace walk does not know what {name!r} addresses; "
            f"map it to an object of the workspace in tests/api/test_cross_workspace.py"
        )
    return getattr(world, table[name])


# -- what must not change ----------------------------------------------------------------------
def snapshot() -> dict:
    """Everything a leaked write could touch, in both workspaces."""
    return {
        "conversations": list(
            Conversation.objects.order_by("pk")
            .annotate(n_labels=Count("labels"))
            .values_list(
                "pk", "workspace_id", "status", "priority", "assignee_id", "team_id",
                "snoozed_until", "resolved_at", "last_message_at", "n_labels",
            )
        ),
        "labels": list(Conversation.labels.through.objects.order_by("pk").values_list()),
        "label_rows": list(Label.objects.order_by("pk").values_list("pk", "workspace_id", "name")),
        "messages": list(
            Message.objects.order_by("pk").values_list(
                "pk", "conversation_id", "kind", "text", "status", "error", "send_attempts"
            )
        ),
        "channels": list(
            Channel.objects.order_by("pk").values_list(
                "pk", "workspace_id", "name", "settings", "default_team_id", "is_active"
            )
        ),
        "contacts": list(
            Contact.objects.order_by("pk").values_list("pk", "workspace_id", "name", "email")
        ),
        "events": list(
            InboundEvent.objects.order_by("pk").values_list(
                "pk", "status", "attempts", "error", "processed_at"
            )
        ),
        "members": list(Membership.objects.order_by("pk").values_list("pk", "role")),
        "teams": list(Team.objects.order_by("pk").values_list("pk", "workspace_id", "name")),
        "canned_replies": list(
            CannedReply.objects.order_by("pk").values_list(
                "pk", "workspace_id", "owner_id", "shortcut", "title", "language", "body"
            )
        ),
        "sla_policies": list(
            SlaPolicy.objects.order_by("pk").values_list(
                "pk", "workspace_id", "name", "enabled", "is_default", "targets", "warn_value"
            )
        ),
        "macros": list(
            Macro.objects.order_by("pk").values_list(
                "pk", "workspace_id", "owner_id", "name", "actions", "times_used"
            )
        ),
        "flows": list(
            Flow.objects.order_by("pk").values_list(
                "pk", "workspace_id", "name", "enabled", "draft", "published_id"
            )
        ),
        "kb_categories": list(
            Category.objects.order_by("pk").values_list(
                "pk", "workspace_id", "slug", "names", "descriptions", "position"
            )
        ),
        "kb_articles": list(
            Article.objects.order_by("pk").values_list(
                "pk", "workspace_id", "category_id", "internal", "position"
            )
        ),
        "kb_translations": list(
            ArticleTranslation.objects.order_by("pk").values_list(
                "pk", "article_id", "locale", "slug", "status", "title", "body",
                "draft_title", "draft_body",
            )
        ),
        "suggestion_feedback": list(
            SuggestionFeedback.objects.order_by("pk").values_list(
                "pk", "workspace_id", "conversation_id", "kind", "article_id", "verdict",
            )
        ),
        "report_schedules": list(
            ReportSchedule.objects.order_by("pk")
            .annotate(n_recipients=Count("recipients"))
            .values_list("pk", "workspace_id", "name", "enabled", "hour", "n_recipients")
        ),
        "tasks": DBTaskResult.objects.count(),
    }  # fmt: skip


# -- the knowledge base's rows, beside the World of tests/api/conftest.py -----------------------
def with_knowledge(world: World) -> World:
    """A category and an article in it, its English translation published with a newer draft."""
    world.kb_category = kb_services.create_category(
        world.workspace, names={"en": f"{world.marker} category"}
    )
    world.kb_article = kb_services.create_article(
        world.workspace,
        locale="en",
        title=f"{world.marker} article",
        body=f"{world.marker} text",
        category=world.kb_category,
    )
    world.kb_suggested = kb_services.create_article(
        world.workspace, locale="en", title=f"{world.marker} suggested"
    )
    translation = kb_services.translation_of(world.kb_article, "en")
    kb_services.publish(translation)
    kb_services.save_draft(
        world.kb_article, "en", title=f"{world.marker} article v2", body=f"{world.marker} v2"
    )
    return world


def with_report_schedule(world: World) -> World:
    """A scheduled report of the workspace, e-mailed to its owner, and a label on its
    conversation (the reports' label filter)."""
    world.label = Label.objects.create(workspace=world.workspace, name=f"{world.marker} label")
    world.conversation.labels.add(world.label)
    world.report_schedule = schedules.create_schedule(
        world.workspace,
        actor=world.owner,
        name=f"{world.marker} schedule",
        frequency="daily",
        hour=8,
        recipient_ids=[world.owner.pk],
    )
    return world


@pytest.fixture
def world_a(world_a) -> World:
    return with_report_schedule(with_knowledge(world_a))


@pytest.fixture
def world_b(world_b) -> World:
    return with_report_schedule(with_knowledge(world_b))


# -- the walk ----------------------------------------------------------------------------------
def test_the_walk_sees_every_route():
    """The URL patterns and the OpenAPI schema agree, and the known routes are all there."""
    templates = url_templates()
    in_schema = {template for _method, template in schema_operations()}
    walked = {t for t in templates if path_params(t)}
    assert walked <= in_schema, f"routes missing from the OpenAPI schema: {walked - in_schema}"
    assert {
        "/channels/{channel_id}",
        "/conversations/{conversation_id}",
        "/conversations/{conversation_id}/messages",
        "/conversations/{conversation_id}/messages/{message_id}/retry",
        "/contacts/{contact_id}",
        "/inbound-events/{event_id}",
        "/inbound-events/{event_id}/replay",
        "/knowledge/categories/{category_id}",
        "/knowledge/articles/{article_id}",
        "/knowledge/articles/{article_id}/translations/{locale}",
        "/knowledge/articles/{article_id}/translations/{locale}/publish",
        "/knowledge/articles/{article_id}/translations/{locale}/withdraw",
        "/conversations/{conversation_id}/suggestions",
        "/conversations/{conversation_id}/suggestions/feedback",
    } <= walked


def walk(client, world_a: World, world_b: World, *, agent: bool = False) -> list[str]:
    """Call every method of every route that takes an id with B's ids (and every mix of A's
    and B's). Each answer must be the JSON 404 an id that exists nowhere gets; an agent may get
    a 403 instead on an admin-only route, the same 403 a missing id gets."""
    operations = schema_operations()
    walked = []
    for template in url_templates():
        names = path_params(template)
        if not names:
            continue
        where = f"/api/v1{template}"
        own = {n: object_for(world_a, n, PATH_OBJECTS, where).pk for n in names}
        foreign = {n: object_for(world_b, n, PATH_OBJECTS, where).pk for n in names}
        registered = {m for m in METHODS if (m, template) in operations}
        assert registered, f"{where} has no operation in the OpenAPI schema"
        for method in METHODS:
            body = body_for(method, template, operations.get((method, template)), world_a)
            # Every mix of A's and B's ids with at least one of B's: a nested id of B under an
            # id of A is just as foreign.
            for choice in itertools.product((False, True), repeat=len(names)):
                if not any(choice):
                    continue
                mix = list(zip(names, choice, strict=True))
                path = fill(template, {n: (foreign[n] if b else own[n]) for n, b in mix})
                response = call(client, method, path, body)
                if method not in registered:
                    assert response.status_code == 405, (method, path, response.status_code)
                    continue
                label = f"{method} {path}"
                status = response.status_code
                if not (agent and status == 403):
                    status = 404
                error = assert_error(response, status, "not_found" if status == 404 else None)
                # Indistinguishable from an id that exists nowhere.
                missing = fill(template, {n: (MISSING_ID if b else own[n]) for n, b in mix})
                absent = call(client, method, missing, body)
                assert assert_error(absent, status) == error, label
                walked.append(label)
    return walked


def test_a_token_of_workspace_a_gets_404_for_every_id_of_workspace_b(world_a, world_b, api_a):
    before = snapshot()
    walked = walk(api_a, world_a, world_b)
    assert snapshot() == before, "a request with A's token changed data"
    assert len(walked) >= 8, walked
    assert f"POST /knowledge/articles/{world_b.kb_article.pk}/translations/en/publish" in walked

    # The control: the same requests with A's own ids do reach A's objects, so each 404 above
    # came from the workspace scoping, not from a broken route or an invalid body.
    operations = schema_operations()
    for template in url_templates():
        names = path_params(template)
        if not names:
            continue
        own = {n: getattr(world_a, PATH_OBJECTS[n]).pk for n in names}
        for method in METHODS:
            operation = operations.get((method, template))
            if operation is None:
                continue
            body = body_for(method, template, operation, world_a)
            response = call(api_a, method, fill(template, own), body)
            assert response.status_code < 300 or response.status_code == 409, (
                method, template, response.status_code, response.content[:300],
            )  # fmt: skip


def test_an_agent_token_of_workspace_a_learns_nothing_of_workspace_b(world_a, world_b):
    before = snapshot()
    walked = walk(factories.ApiClient(world_a.agent), world_a, world_b, agent=True)
    assert snapshot() == before, "a request with an agent's token changed data"
    assert len(walked) >= 8, walked


def test_ids_of_workspace_b_in_a_body_are_refused(world_a, world_b, api_a):
    """A body field naming an object (team_id, assignee_id, ...) of B is a 400 invalid error and
    changes nothing, on every operation that takes a JSON body."""
    operations = schema_operations()
    checked = []
    for (method, template), operation in operations.items():
        if "requestBody" not in operation:
            continue
        fields = [
            name
            for name in body_schema(operation).get("properties", {})
            if name.endswith("_id") and name not in NOT_OBJECTS
        ]
        where = f"{method} /api/v1{template}"
        own = {n: object_for(world_a, n, PATH_OBJECTS, where).pk for n in path_params(template)}
        for field in fields:
            before = snapshot()
            body = body_for(method, template, operation, world_a)
            body[field] = object_for(world_b, field, REFERENCE_OBJECTS, where).pk
            response = call(api_a, method, fill(template, own), body)
            assert_error(response, 400, "invalid")
            assert snapshot() == before, f"{where} with {field} of another workspace changed data"
            checked.append((where, field))
    assert ("PATCH /api/v1/conversations/{conversation_id}", "assignee_id") in checked
    assert ("PATCH /api/v1/conversations/{conversation_id}", "team_id") in checked
    assert ("POST /api/v1/channels", "default_team_id") in checked


def body_of(response) -> str:
    """A response's text, streamed (the report downloads) or not."""
    if response.streaming:
        return b"".join(response.streaming_content).decode("utf-8-sig", "replace")
    return response.content.decode()


def test_list_routes_never_show_workspace_b(world_a, world_b, api_a):
    """Every list route, unfiltered and filtered by each of B's ids, shows nothing of B."""
    rollups.catch_up()  # the reports count both workspaces' conversations
    assert call(api_a, "GET", "/reports/overview").json()["totals"]["created"] == 1
    operations = schema_operations()
    lists = [t for (m, t) in operations if m == "GET" and not path_params(t)]
    assert {"/channels", "/conversations", "/contacts", "/inbound-events"} <= set(lists)
    for template in lists:
        where = f"GET /api/v1{template}"
        path = re.sub(r"{(\w+)}", lambda m: PATH_VALUES[m.group(1)], template)
        response = call(api_a, "GET", path)
        assert response.status_code == 200, (where, response.content[:300])
        assert world_b.marker.lower() not in body_of(response).lower(), where
        if template in ("/channels", "/conversations", "/contacts"):  # and A's data is there
            assert world_a.marker.lower() in body_of(response).lower(), where
        for param in operations[("GET", template)].get("parameters", []):
            name = param["name"]
            if param["in"] != "query" or not name.endswith("_id"):
                continue
            target = object_for(world_b, name, REFERENCE_OBJECTS, where)
            response = call(api_a, "GET", f"{path}?{name}={target.pk}")
            assert response.status_code == 200, (where, name)
            if response.streaming:  # a download: the same as for an id that exists nowhere
                nowhere = call(api_a, "GET", f"{path}?{name}={MISSING_ID}")
                assert body_of(response) == body_of(nowhere), (where, name)
                continue
            body = response.json()
            if isinstance(body, dict) and "items" not in body:
                # Figures (the reports): the same as for an id that exists nowhere.
                nowhere = call(api_a, "GET", f"{path}?{name}={MISSING_ID}").json()
                assert body == nowhere, (where, name)
                continue
            assert (body["items"] if isinstance(body, dict) else body) == [], (where, name)


def test_explicit_filters_with_ids_of_workspace_b_return_nothing(world_a, world_b, api_a):
    b = world_b
    for query in (
        f"contact_id={b.contact.pk}",
        f"team_id={b.team.pk}",
        f"channel_id={b.channel.pk}",
        f"assignee_id={b.agent.pk}",
        f"assignee_id={b.owner.pk}",
    ):
        response = call(api_a, "GET", f"/conversations?{query}")
        assert response.status_code == 200, query
        assert response.json() == {"items": [], "next_cursor": None}, query

    everything = call(api_a, "GET", "/conversations?limit=100").json()["items"]
    assert {c["id"] for c in everything} == {world_a.conversation.pk}
    channels = call(api_a, "GET", "/channels").json()
    assert {c["id"] for c in channels} == {world_a.channel.pk}
    contacts = call(api_a, "GET", f"/contacts?q={b.marker}").json()
    assert contacts == {"items": [], "next_cursor": None}
    contacts = call(api_a, "GET", f"/contacts?q={b.contact.email}").json()
    assert contacts["items"] == []
    events = call(api_a, "GET", "/inbound-events").json()["items"]
    assert {e["id"] for e in events} == {world_a.event.pk}
    messages = call(api_a, "GET", f"/conversations/{world_a.conversation.pk}/messages").json()
    assert b.message.pk not in {m["id"] for m in messages["items"]}
