"""Retrying a publication never posts anything twice (moto server + a fake X API over real HTTP).

The fake X answers POST /2/tweets on 127.0.0.1 through the production `UrllibTransport`, so a read
timeout is a real socket timeout after the post was created. Each test scripts the answers; the
fake records every post it created, so "exactly 3 posts" counts what is on the platform.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chalicelib.config import settings
from chalicelib.incidents import service as incidents
from chalicelib.incidents.service import Trigger
from chalicelib.publish import service as publish
from chalicelib.publish.api import publish_request, resolve_request
from chalicelib.publish.base import PlatformError, Progress, UrllibTransport
from chalicelib.publish.x import XPublisher
from chalicelib.statements import service as statements
from chalicelib.statements import xtext

pytestmark = pytest.mark.integration

SIGNER, QUORUM = "sarah-whitfield", ("avi-shapira", "james-okafor")
FACTS = {
    "product": "Golden Foods hummus 400g (best before 12 May)",
    "what_we_know": "Listeria was found in one batch.",
    "what_we_are_doing": "We stopped the line and called the regulator.",
    "next_update": "by 18:00 today",
}
HANG_SECONDS, CLIENT_TIMEOUT = 1.2, 0.4


class Killed(BaseException):  # noqa: N818 - stands for the Lambda being killed mid-call
    """Not an Exception: no handler in the code under test runs, as when a Lambda times out."""


@dataclass
class Post:
    id: str
    text: str
    reply_to: str | None


@dataclass
class FakeX:
    """`script` answers requests in turn: "ok"; a status (nothing created); ("accept", status): the
    post is created and the answer is that status; "hang": created, answered after the client gave up."""

    url: str = ""
    script: list[Any] = field(default_factory=list)
    posts: list[Post] = field(default_factory=list)
    requests: int = 0
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1900))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        with self.lock:
            self.requests += 1
            step = self.script.pop(0) if self.script else "ok"
            if isinstance(step, int):
                return step, {"title": "refused"}, 0.0
            post = Post(str(next(self.ids)), body["text"], (body.get("reply") or {}).get("in_reply_to_tweet_id"))
            self.posts.append(post)
            answer = {"data": {"id": post.id, "text": post.text}}
            if step == "hang":
                return 201, answer, HANG_SECONDS
            if isinstance(step, tuple):
                return step[1], {"title": "upstream error"}, 0.0
            return 201, answer, 0.0

    def publisher(self) -> XPublisher:
        return XPublisher("user-token", UrllibTransport(timeout=CLIENT_TIMEOUT), base_url=self.url)


@pytest.fixture
def fake_x() -> Iterator[FakeX]:
    fake = FakeX()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, answer, delay = fake.answer(body)
            time.sleep(delay)
            data = json.dumps(answer).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up waiting

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The actions handed to outbound subscribers (the real emit still runs)."""
    from chalicelib.outbound import service as outbound

    seen: list[str] = []
    real = outbound.emit

    def emit(incident: Any, entry: Any) -> Any:
        seen.append(entry.action)
        return real(incident, entry)

    monkeypatch.setattr(outbound, "emit", emit)
    return seen


def approved_incident(parts: int) -> tuple[str, statements.Draft]:
    """An incident whose approved English statement is an X thread of `parts` posts."""
    incident_id = incidents.open_or_update(
        brand="golden-foods",
        playbook="golden-product-recall",
        severity="sev1",
        trigger=Trigger(actor="detector", channel="ingest", summary="neg 90/5min", observed=90, ratio=6),
    ).incident.id
    (draft,) = statements.draft_statements(incident_id, FACTS, ["en"], actor="maya-katz")
    text = "Please do not eat Golden Foods hummus 400g (best before 12 May).\n\nSarah Whitfield"
    while len(xtext.x_thread(text)) < parts:
        text = "We are checking every batch made this week and will say what we find.\n\n" + text
    assert len(xtext.x_thread(text)) == parts
    draft = statements.edit(incident_id, "en", base_hash=draft.hash, text=text, person_id=SIGNER)
    for person in (SIGNER, *QUORUM):
        statements.approve(incident_id, "en", version_hash=draft.hash, person_id=person)
    return incident_id, draft


def actions(incident_id: str) -> list[str]:
    return [entry.action for entry in incidents.timeline(incident_id)]


def stored(incident_id: str, draft: statements.Draft, key: str = "default:post:thread") -> Any:
    item = publish.get_publication(incident_id, draft.hash, "x", key)
    assert item is not None
    return item


def assert_one_thread(fake: FakeX, draft: statements.Draft, reply_to: str | None = None) -> None:
    """Exactly the approved thread is up, once, each part replying to the one before."""
    assert [p.text for p in fake.posts] == xtext.x_thread(draft.text)
    assert [p.reply_to for p in fake.posts] == [reply_to] + [p.id for p in fake.posts[:-1]]


def test_a_503_on_part_2_then_a_retry_posts_exactly_three(env: Any, fake_x: FakeX, events: list[str]) -> None:
    incident_id, draft = approved_incident(3)
    fake_x.script = ["ok", 503]
    with pytest.raises(PlatformError, match="after 1 of 3 posts") as caught:
        publish.publish_statement(incident_id, "en", publisher=fake_x.publisher(), actor="maya-katz")
    assert caught.value.response_status == 503
    item = stored(incident_id, draft)
    assert item.state == "failed" and list(item.part_ids) == [fake_x.posts[0].id] and item.part_count == 3
    assert "statement_publish_failed" in actions(incident_id)
    assert incidents.get(incident_id).status == incidents.STATEMENT_APPROVED

    result = publish.publish_statement(incident_id, "en", publisher=fake_x.publisher(), actor="maya-katz")
    assert len(fake_x.posts) == 3 and fake_x.requests == 4
    assert fake_x.posts[1].reply_to == fake_x.posts[0].id  # the thread continues from part 1
    assert_one_thread(fake_x, draft)
    assert result.part_ids == tuple(p.id for p in fake_x.posts) and result.platform_id == fake_x.posts[0].id
    assert incidents.get(incident_id).status == incidents.PUBLISHED
    assert actions(incident_id).count("statement_published") == 1 and events.count("statement_published") == 1

    again = publish.publish_statement(incident_id, "en", publisher=fake_x.publisher(), actor="maya-katz")
    assert again.already and fake_x.requests == 4


def test_a_timeout_after_acceptance_is_in_doubt_and_a_retry_posts_nothing(
    env: Any, fake_x: FakeX, events: list[str]
) -> None:
    incident_id, draft = approved_incident(3)
    fake_x.script = ["ok", "hang"]
    with pytest.raises(publish.PublishInDoubt) as caught:
        publish.publish_statement(incident_id, "en", publisher=fake_x.publisher(), actor="maya-katz")
    assert caught.value.status == 502 and "part 2 of 3 may or may not be on the platform" in str(caught.value)
    assert caught.value.details["part"] == 2 and caught.value.details["posted_part_ids"] == [fake_x.posts[0].id]
    assert len(fake_x.posts) == 2  # X has part 2; Klaxon cannot know
    item = stored(incident_id, draft)
    assert item.state == "in_doubt" and item.doubt_part == 2 and list(item.part_ids) == [fake_x.posts[0].id]
    assert "statement_publish_in_doubt" in actions(incident_id)

    for _ in range(2):  # a retry, through the service and through the route, posts nothing
        with pytest.raises(publish.PublishInDoubt, match="part 2 of 3"):
            publish.publish_statement(incident_id, "en", publisher=fake_x.publisher(), actor="maya-katz")
    body = {"lang": "en", "version_hash": draft.hash, "platform": "x"}
    answer = publish_request(incident_id, body, actor="maya-katz", publisher=fake_x.publisher())
    assert (
        answer.status == 409 and answer.body["in_doubt"]["part"] == 2 and "check the platform" in answer.body["error"]
    )
    assert fake_x.requests == 2 and len(fake_x.posts) == 2
    assert incidents.get(incident_id).status == incidents.STATEMENT_APPROVED
    listed = env.client.http.get(f"/incidents/{incident_id}", headers={"x-api-key": settings().api_key})
    (shown,) = json.loads(listed.body)["publications"]
    assert shown["state"] == "in_doubt" and shown["in_doubt_part"] == 2

    # A person finds part 2 on X and says so: the next publish sends part 3 only, replying to it.
    resolve = {**body, "part": 2, "outcome": "posted", "post_id": fake_x.posts[1].id}
    assert resolve_request(incident_id, {**resolve, "part": 3}, actor="maya-katz").status == 409
    assert resolve_request(incident_id, {**resolve, "post_id": None}, actor="maya-katz").status == 409
    assert resolve_request(incident_id, resolve, actor="maya-katz").status == 200
    assert resolve_request(incident_id, resolve, actor="maya-katz").status == 409  # no longer in doubt
    assert stored(incident_id, draft).state == "failed" and fake_x.requests == 2
    result = publish.publish_statement(incident_id, "en", publisher=fake_x.publisher(), actor="maya-katz")
    assert len(fake_x.posts) == 3 and fake_x.requests == 3
    assert_one_thread(fake_x, draft)
    assert result.part_ids == tuple(p.id for p in fake_x.posts)
    assert incidents.get(incident_id).status == incidents.PUBLISHED
    log = actions(incident_id)
    assert log.count("statement_published") == 1 and "statement_publish_resolved" in log
    assert events.count("statement_published") == 1


def test_in_doubt_part_not_posted_is_sent_again_after_the_resolution(env: Any, fake_x: FakeX) -> None:
    """A 500 may come after acceptance: in doubt. Here X has nothing; the person says so, the retry
    sends that part again, still as a reply to the part before it."""
    incident_id, draft = approved_incident(3)
    fake_x.script = ["ok", 500]
    with pytest.raises(publish.PublishInDoubt):
        publish.publish_statement(incident_id, "en", publisher=fake_x.publisher(), actor="maya-katz")
    with pytest.raises(publish.PublishInDoubt):
        publish.publish_statement(incident_id, "en", publisher=fake_x.publisher(), actor="maya-katz")
    resolve = {"version_hash": draft.hash, "platform": "x", "part": 2, "outcome": "not_posted", "note": "not on X"}
    assert resolve_request(incident_id, resolve, actor="maya-katz").status == 200
    publish.publish_statement(incident_id, "en", publisher=fake_x.publisher(), actor="maya-katz")
    assert len(fake_x.posts) == 3 and fake_x.requests == 4
    assert_one_thread(fake_x, draft)


def test_the_last_part_confirmed_by_hand_publishes_without_sending(env: Any, fake_x: FakeX, events: list[str]) -> None:
    incident_id, draft = approved_incident(2)
    fake_x.script = ["ok", ("accept", 502)]  # X took part 2; a proxy answered 502
    with pytest.raises(publish.PublishInDoubt, match="part 2 of 2"):
        publish.publish_statement(incident_id, "en", publisher=fake_x.publisher(), actor="maya-katz")
    resolve = {"version_hash": draft.hash, "platform": "x", "part": 2, "outcome": "posted"}
    done = resolve_request(incident_id, {**resolve, "post_id": fake_x.posts[1].id}, actor="maya-katz")
    assert done.status == 200 and done.body["state"] == "published"
    assert done.body["part_ids"] == [p.id for p in fake_x.posts]
    assert incidents.get(incident_id).status == incidents.PUBLISHED
    assert incidents.get(incident_id).first_response_at is not None
    assert actions(incident_id).count("statement_published") == 1 and events.count("statement_published") == 1
    again = publish.publish_statement(incident_id, "en", publisher=fake_x.publisher(), actor="maya-katz")
    assert again.already and fake_x.requests == 2
    assert_one_thread(fake_x, draft)
    headers = {"x-api-key": settings().api_key, "content-type": "application/json", "x-klaxon-actor": "maya-katz"}
    body = json.dumps({**resolve, "post_id": fake_x.posts[1].id})
    routed = env.client.http.post(f"/incidents/{incident_id}/resolve-publication", headers=headers, body=body)
    assert routed.status_code == 409 and "not in doubt" in json.loads(routed.body)["error"]


def test_refusals_before_anything_was_sent_stay_retryable(env: Any, fake_x: FakeX) -> None:
    incident_id, draft = approved_incident(3)
    fake_x.script = [429]
    with pytest.raises(PlatformError, match="X refused the post"):
        publish.publish_statement(incident_id, "en", publisher=fake_x.publisher(), actor="maya-katz")
    closed = XPublisher("t", UrllibTransport(timeout=CLIENT_TIMEOUT), base_url="http://127.0.0.1:9")
    with pytest.raises(PlatformError, match="could not reach"):  # connection refused: never sent
        publish.publish_statement(incident_id, "en", publisher=closed, actor="maya-katz")
    assert stored(incident_id, draft).state == "failed" and fake_x.posts == []
    publish.publish_statement(incident_id, "en", publisher=fake_x.publisher(), actor="maya-katz")
    assert_one_thread(fake_x, draft)


# --- killed mid-publication (issue: published never reached) ------------------------------------


def test_killed_after_every_part_was_recorded_a_retry_finishes_without_sending(
    env: Any, fake_x: FakeX, events: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after X accepted the last part and its id was recorded, before `published` and the
    timeline entry: the retry sends nothing and finishes: published, one entry, one event."""
    incident_id, draft = approved_incident(2)
    real_finish = publish._finish

    def die(*args: Any, **kwargs: Any) -> Any:
        raise Killed

    monkeypatch.setattr(publish, "_finish", die)
    with pytest.raises(Killed):
        publish.publish_statement(incident_id, "en", publisher=fake_x.publisher(), actor="maya-katz")
    assert stored(incident_id, draft).state == "publishing" and "statement_published" not in actions(incident_id)
    monkeypatch.setattr(publish, "_finish", real_finish)
    result = publish.publish_statement(incident_id, "en", publisher=fake_x.publisher(), actor="maya-katz")
    assert result.part_ids == tuple(p.id for p in fake_x.posts) and fake_x.requests == 2
    incident = incidents.get(incident_id)
    assert incident.status == incidents.PUBLISHED and incident.first_response_at is not None
    assert actions(incident_id).count("statement_published") == 1 and events.count("statement_published") == 1
    assert all(target != "first_response" for _, target in incidents.check_breaches(now=time.time() + 86400))


def test_killed_after_published_before_the_lifecycle_move_a_retry_moves_it(
    env: Any, fake_x: FakeX, events: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between writing `published` (with its timeline entry) and moving the incident: the
    retry answers "already published", sends nothing, and moves the incident to published."""
    incident_id, draft = approved_incident(1)
    real_after = publish._after_published
    calls = {"n": 0}

    def die_once(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise Killed
        return real_after(*args, **kwargs)

    monkeypatch.setattr(publish, "_after_published", die_once)
    with pytest.raises(Killed):
        publish.publish_statement(incident_id, "en", publisher=fake_x.publisher(), actor="maya-katz")
    assert incidents.get(incident_id).status == incidents.STATEMENT_APPROVED
    again = publish.publish_statement(incident_id, "en", publisher=fake_x.publisher(), actor="maya-katz")
    assert again.already and fake_x.requests == 1
    incident = incidents.get(incident_id)
    assert incident.status == incidents.PUBLISHED and incident.first_response_at is not None
    assert all(target != "first_response" for _, target in incidents.check_breaches(now=time.time() + 86400))
    log = actions(incident_id)
    assert log.count("statement_published") == 1 and log.count("published") == 1
    assert events.count("statement_published") == 1


def test_killed_before_the_accepted_post_was_recorded_it_is_in_doubt_until_resolved(
    env: Any, fake_x: FakeX, events: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed right after X accepted the post, before its id was stored: the post is up but Klaxon
    cannot know. A retry sends nothing (in progress, then in doubt once stale); resolved by hand."""
    incident_id, draft = approved_incident(1)
    real_progress = publish._progress

    def dying_progress(item: Any) -> Progress:
        def die(index: int, post_id: str) -> None:
            raise Killed

        return Progress(real_progress(item).posted, die)

    monkeypatch.setattr(publish, "_progress", dying_progress)
    with pytest.raises(Killed):
        publish.publish_statement(incident_id, "en", publisher=fake_x.publisher(), actor="maya-katz")
    monkeypatch.setattr(publish, "_progress", real_progress)
    with pytest.raises(publish.PublishInDoubt, match="in progress"):
        publish.publish_statement(incident_id, "en", publisher=fake_x.publisher(), actor="maya-katz")
    resolve = {"version_hash": draft.hash, "platform": "x", "part": 1, "outcome": "posted", "post_id": "1900"}
    assert resolve_request(incident_id, resolve, actor="maya-katz").status == 409  # may still be running
    monkeypatch.setattr(publish, "STALE_PUBLISHING_SECONDS", 0.0)
    with pytest.raises(publish.PublishInDoubt, match="part 1 of 1 may or may not be on the platform"):
        publish.publish_statement(incident_id, "en", publisher=fake_x.publisher(), actor="maya-katz")
    assert fake_x.requests == 1
    assert resolve_request(incident_id, {**resolve, "post_id": fake_x.posts[0].id}, actor="maya-katz").status == 200
    assert incidents.get(incident_id).status == incidents.PUBLISHED
    assert actions(incident_id).count("statement_published") == 1 and events.count("statement_published") == 1
    assert publish.publish_statement(incident_id, "en", publisher=fake_x.publisher(), actor="maya-katz").already
    assert fake_x.requests == 1


@pytest.mark.parametrize("entry_written", [True, False])
def test_a_publication_stored_before_this_change_gets_exactly_one_entry(
    env: Any, events: list[str], entry_written: bool
) -> None:
    """Publications stored `published` by the previous code have no `timeline_sk`. A retry finds the
    entry the old code wrote, or writes the one a dead process never did: one either way."""
    from chalicelib.publish.outbox import OutboxPublisher
    from chalicelib.store.models import PublicationItem, TimelineItem

    incident_id, draft = approved_incident(1)
    first = publish.publish_statement(incident_id, "en", publisher=OutboxPublisher(), actor="maya-katz")
    item = publish.get_publication(incident_id, draft.hash, "outbox", first.target)
    assert item is not None and item.timeline_sk is not None
    if not entry_written:
        TimelineItem(item.pk, item.timeline_sk).delete()
    item.update(actions=[PublicationItem.timeline_sk.remove()])
    for _ in range(2):
        assert publish.publish_statement(incident_id, "en", publisher=OutboxPublisher(), actor="maya-katz").already
    assert actions(incident_id).count("statement_published") == 1
    assert events.count("statement_published") == (1 if entry_written else 2)  # + the rewritten one
