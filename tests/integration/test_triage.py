"""Triage over the local stack: mentions go through SQS and the real ingest handler into the moto-backed
queue; the staff routes are called through chalice.test.Client; the sweeper's breaches and digests go
to the real outbound SQS queue."""

from __future__ import annotations

import json
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chalicelib.config import settings
from chalicelib.ingest.models import Author, Mention
from chalicelib.ingest.queue import enqueue
from chalicelib.outbound import service as outbound
from chalicelib.store.models import TriageEntryItem, on_dynamodb
from chalicelib.triage import digest, queue
from klaxon.lambda_sqs import receive
from tests.integration.test_exactly_once import WRITE_OPS, ingest_killed_after_write

pytestmark = pytest.mark.integration

BRAND = "acme-telecom"


def headers() -> dict[str, str]:
    return {"content-type": "application/json", "x-api-key": settings().api_key, "x-klaxon-actor": "noa-ben-david"}


def mention(
    pid: str, text: str, *, minutes_ago: float, handle: str, followers: int | None = None,
    reply_to: str | None = None, brands: tuple[str, ...] = (BRAND,), now: float | None = None,
) -> Mention:
    at = datetime.fromtimestamp((now or time.time()) - minutes_ago * 60, tz=UTC)
    return Mention(
        platform="x", platform_id=pid, text=text, created_at=at, reply_to=reply_to, brands=brands,
        author=Author(id=f"id-{handle}", handle=handle, followers=followers), url=f"https://x.com/{handle}/status/{pid}",
    )


def burst() -> list[Mention]:
    copy = "@AcmeTelecom No service in Haifa since the morning. When will it be fixed?"
    return [
        # A: a Hebrew crisis term from a large account, with intensity markers
        mention("a1", "@AcmeTelecom אין קליטה בכל חיפה כבר שעתיים!!! בושה", minutes_ago=20, handle="bigvoice",
                followers=250_000),
        # B: a billing question from a small account, the oldest post
        mention("b1", "@AcmeTelecom why was I charged twice this month?", minutes_ago=50, handle="smallacct",
                followers=40),
        # C: the same person three times: one entry, count 3
        mention("c1", "@AcmeTelecom why did your agent hang up on me?", minutes_ago=40, handle="dana"),
        mention("c2", "@AcmeTelecom is anyone going to call me back?", minutes_ago=30, handle="dana"),
        mention("c3", "@AcmeTelecom still waiting, will someone call me today?", minutes_ago=10, handle="dana"),
        # D: identical copies from three accounts: one entry, count 3
        mention("d1", copy, minutes_ago=15, handle="copy1"),
        mention("d2", copy, minutes_ago=14, handle="copy2"),
        mention("d3", copy + " https://t.co/abc", minutes_ago=13, handle="copy3"),
        # E: thanks: needs no reply
        mention("e1", "@AcmeTelecom thank you so much, I love the new plan, great service!", minutes_ago=5,
                handle="fan"),
        # F: a growing thread of replies to one post, three people, three entries (alike but for the thread:
        # a crisis term forces each negative, so the model's view of the wording cannot differ)
        mention("f1", "@AcmeTelecom no signal in Haifa either, any update?", minutes_ago=9, handle="t1",
                reply_to="999"),
        mention("f2", "@AcmeTelecom no signal in Tel Aviv too. any news?", minutes_ago=8, handle="t2", reply_to="999"),
        mention("f3", "@AcmeTelecom no signal in Akko as well, when is the fix?", minutes_ago=7, handle="t3",
                reply_to="999"),
        # G: another brand's question: not in this brand's queue
        mention("g1", "@GoldenFoods is the hummus safe to eat?", minutes_ago=12, handle="shopper",
                brands=("golden-foods",)),
    ]


def queue_json(env: Any, query: str = "") -> dict[str, Any]:
    response = env.client.http.get(f"/brands/{BRAND}/triage{query}", headers=headers())
    assert response.status_code == 200, response.body
    return json.loads(response.body)


def by_first_key(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Entries keyed by the platform id of the post that opened them (tests name posts a1, c1, ...)."""
    out = {}
    for entry in entries:
        item = TriageEntryItem.get(f"triage#{BRAND}", f"e#{entry['entry_id']}", consistent_read=True)
        out[item.mention_keys[0].split("#", 1)[1]] = entry
    return out


def snapshot(env: Any) -> list[tuple[str, int, int, float]]:
    return [(e["entry_id"], e["count"], e["urgency"], e["first_at"]) for e in queue_json(env)["entries"]]


def test_burst_yields_the_documented_order_and_groups(env: Any) -> None:
    items = burst()
    enqueue(items)
    stats = env.drain()
    assert stats.failed == 0
    body = queue_json(env)
    entries = body["entries"]
    first = by_first_key(entries)
    # Which posts needed a reply, and how they were grouped.
    assert set(first) == {"a1", "b1", "c1", "d1", "f1", "f2", "f3"}
    assert first["c1"]["count"] == 3 and first["d1"]["count"] == 3
    assert all(first[k]["count"] == 1 for k in ("a1", "b1", "f1", "f2", "f3"))
    # The documented order: urgency descending, then the longest-waiting first.
    keys = [(-e["urgency"], e["first_at"]) for e in entries]
    assert keys == sorted(keys)
    assert [e["entry_id"] for e in entries[:2]] == [first["a1"]["entry_id"], first["d1"]["entry_id"]]
    a = first["a1"]
    assert a["crisis"] and a["playbook"] == "acme-network-outage" and a["topics"] == ["outage"]
    assert a["language"] == "he" and a["followers"] == 250_000
    assert first["b1"]["topics"] == ["billing"] and first["b1"]["question"]
    assert "staff" in first["c1"]["topics"]
    # The thread grows: each later reply in it is more urgent than the one before.
    assert first["f1"]["urgency"] < first["f2"]["urgency"] < first["f3"]["urgency"]
    # Clocks: x is 30 minutes for this brand; B (50 minutes old) is already late, A (20) is not.
    assert first["b1"]["target_minutes"] == 30 and first["b1"]["seconds_left"] < 0 and first["b1"]["breached"]
    assert 0 < a["seconds_left"] <= 10 * 60 + 5
    # The other brand's question is in its own queue only.
    other = env.client.http.get("/brands/golden-foods/triage", headers=headers())
    assert [e["text"] for e in json.loads(other.body)["entries"]] == ["@GoldenFoods is the hummus safe to eat?"]
    # Filters.
    outage = queue_json(env, "?topic=outage")["entries"]
    assert {e["entry_id"] for e in outage} >= {a["entry_id"], first["d1"]["entry_id"]}
    assert all("outage" in e["topics"] for e in outage)
    assert [e["entry_id"] for e in queue_json(env, "?language=he")["entries"]] == [a["entry_id"]]

    # Every message delivered again, shuffled, in smaller batches: nothing changes.
    before = snapshot(env)
    again = items[:]
    random.Random(5).shuffle(again)
    enqueue(again)
    env.drain(batch_size=3)
    assert snapshot(env) == before


def test_killed_after_each_write_then_redelivered_groups_exactly(env: Any) -> None:
    """Kill the handler after its k-th DynamoDB write (claims, counting commit, triage transaction), for
    every k; the redelivery must leave each group with exactly its posts."""
    now = time.time()

    def batch(tag: str) -> list[Mention]:
        return [
            # the tag in the text: identical texts would (rightly) join one group across batches
            mention(f"{tag}-1", f"@AcmeTelecom why no signal at {tag}?", minutes_ago=5, handle=f"{tag}-p", now=now),
            mention(f"{tag}-2", f"@AcmeTelecom {tag}: still no signal, why?", minutes_ago=4, handle=f"{tag}-p",
                    now=now),
            mention(f"{tag}-3", f"@AcmeTelecom why is my bill double at {tag}?", minutes_ago=3, handle=f"{tag}-q",
                    now=now),
        ]

    calls: list[str] = []

    def count_writes(model: Any, **_: Any) -> None:
        if model.name in WRITE_OPS:
            calls.append(model.name)

    on_dynamodb("after-call.dynamodb", count_writes)
    try:
        enqueue(batch("probe"))
        env.drain()
    finally:
        on_dynamodb("after-call.dynamodb", count_writes, remove=True)
    writes = len(calls)
    # the counting commit, and one triage transaction for the batch's three posts (queue.enqueue_many)
    assert calls.count("TransactWriteItems") == 2
    def tag(k: int) -> str:  # letters: the copy fingerprint ignores digits
        return "k" + "".join(chr(97 + int(d)) for d in str(k))

    for k in range(1, writes + 1):
        items = batch(tag(k))
        enqueue(items)
        messages = receive(env.sqs, env.queue_url, max_messages=10)
        assert len(messages) == len(items)
        assert ingest_killed_after_write(env, messages, k) == k
        for message in messages:
            env.sqs.change_message_visibility(
                QueueUrl=env.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        env.drain(batch_size=2)
    counts = {}
    for entry in queue.list_entries(BRAND):
        counts[entry.author] = int(entry.count)
    expected = {"probe-p": 2, "probe-q": 1}
    for k in range(1, writes + 1):
        expected.update({f"{tag(k)}-p": 2, f"{tag(k)}-q": 1})
    assert counts == expected


@pytest.mark.parametrize("batched", [False, True], ids=["one-by-one", "batched"])
def test_concurrent_writers_of_the_same_posts_count_each_once(
    env: Any, monkeypatch: pytest.MonkeyPatch, batched: bool
) -> None:
    """Four Lambdas triage the same six posts (one author's four, plus two copies of one text) at once,
    with a pause between each one's reads and its transaction so their reads go stale: each post lands
    once. Batched: each Lambda writes its posts in random groups of 1-4 (queue.enqueue_many), so a
    group's transaction fails whole when another Lambda got there first and falls back to one by one."""
    from pynamodb.transactions import TransactWrite

    from chalicelib.playbooks.loader import default_playbooks
    from chalicelib.triage.service import rules_for

    class SlowCommit(TransactWrite):  # type: ignore[misc]
        def __exit__(self, *exc: Any) -> Any:
            time.sleep(0.03)
            return super().__exit__(*exc)

    monkeypatch.setattr(queue, "TransactWrite", SlowCommit)
    now = time.time()
    copy = "@AcmeTelecom when does the network in the north come back?"
    posts = [mention(f"s{i}", f"@AcmeTelecom why is {w} down?", minutes_ago=9 - i, handle="same", now=now)
             for i, w in enumerate(["calling", "data", "texting", "roaming"])]
    posts += [mention("s-copy1", copy, minutes_ago=3, handle="other1", now=now),
              mention("s-copy2", copy, minutes_ago=2, handle="other2", now=now)]
    rules = rules_for(BRAND, default_playbooks())
    outcomes: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def lambda_(seed: int) -> None:
        order = posts[:]
        rng = random.Random(seed)
        rng.shuffle(order)
        try:
            while order:
                size = rng.randint(1, 4)
                group, order = order[:size], order[size:]
                if batched:
                    done = queue.enqueue_many(group, rules, target_minutes=lambda _: 30, now=now)
                else:
                    done = [queue.enqueue(post, rules, target_minutes=30, now=now) for post in group]
                with lock:
                    outcomes.extend(d.outcome for d in done)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=lambda_, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert outcomes.count("duplicate") == 3 * len(posts)
    entries = queue.list_entries(BRAND)
    assert sum(int(e.count) for e in entries) == len(posts)
    by_author = {e.author: int(e.count) for e in entries}
    assert by_author["same"] == 4  # the four posts of one author: one entry
    assert sum(by_author.values()) == 6 and len(entries) <= 2


@pytest.fixture
def subscribed(env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A subscriber for the triage events; returns the outbound queue URL to read them from."""
    path = tmp_path / "subscribers.yaml"
    path.write_text(
        "subscribers:\n  - name: comms-slack\n    url: https://hooks.example.com/services/T0/B0/x\n"
        "    format: slack\n    events: [triage.breach, digest.daily]\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("KLAXON_SUBSCRIBERS_FILE", str(path))
    settings.cache_clear()
    return outbound.outbound_queue_url()


def outbound_events(env: Any, url: str) -> list[dict[str, Any]]:
    found = []
    while True:
        messages = receive(env.sqs, url, max_messages=10)
        if not messages:
            return found
        for m in messages:
            found.append(json.loads(m["Body"]))
            env.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_breach_fires_once_per_entry_under_concurrent_sweeps(
    env: Any, subscribed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from klaxon.stack import scheduled_event

    now = time.time()
    towns = ["Haifa", "Eilat", "Akko", "Nazareth", "Ashdod"]  # distinct texts: copies would share one entry
    late = [
        mention(f"late{i}", f"@AcmeTelecom why is my line dead in {town}?", minutes_ago=45 + i, handle=f"late{i}",
                now=now)
        for i, town in enumerate(towns)
    ]
    fresh = [mention("fresh", "@AcmeTelecom why no signal?", minutes_ago=1, handle="fresh", now=now)]
    enqueue(late + fresh)
    env.drain()
    # One of the late ones is answered before the sweep: it must not breach.
    answered = next(e for e in queue.list_entries(BRAND) if e.author == "late0")
    assert env.client.http.post(
        f"/brands/{BRAND}/triage/{answered.entry_id}/handled", body=b"{}", headers=headers()
    ).status_code == 200
    claimed: list[str] = []
    lock = threading.Lock()
    # Every sweep reads the due entries before any of them writes: each one's read is stale by the time
    # it claims, which is the race the conditional update must settle.
    read_all = threading.Barrier(4)
    index = TriageEntryItem.due_index
    original_query = index.query

    def query_then_wait(*args: Any, **kwargs: Any) -> list[Any]:
        items = list(original_query(*args, **kwargs))
        try:
            read_all.wait(timeout=10)
        except threading.BrokenBarrierError:
            pass
        return items

    monkeypatch.setattr(index, "query", query_then_wait)

    def sweep() -> None:
        for _ in range(2):
            got = queue.check_breaches(time.time())
            with lock:
                claimed.extend(e.entry_id for e in got)

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    monkeypatch.setattr(index, "query", original_query)
    env.client.lambda_.invoke("sweeper", scheduled_event("sweeper"))  # the real handler, afterwards
    late_ids = {e.entry_id for e in queue.list_entries(BRAND) if e.author and e.author.startswith("late")}
    expected = late_ids - {answered.entry_id}
    assert len(expected) == 4
    assert sorted(claimed) == sorted(expected)  # each claimed exactly once across 8 concurrent sweeps
    events = [e for e in outbound_events(env, subscribed) if e["type"] == "triage.breach"]
    assert sorted(e["data"]["entry"]["entry_id"] for e in events) == sorted(expected)
    assert len({e["event_id"] for e in events}) == len(expected)
    # A breached entry stays in the queue, marked, until somebody answers it.
    listed = {e["entry_id"]: e for e in queue_json(env)["entries"]}
    assert all(listed[i]["breached"] and listed[i]["breached_at"] for i in expected)
    fresh_entry = next(e for e in listed.values() if e["author"] == "fresh")
    assert not fresh_entry["breached"] and fresh_entry["breached_at"] is None
    assert queue.check_breaches(time.time()) == []


def test_handled_through_the_api_and_bad_input(env: Any) -> None:
    enqueue([mention("h1", "@AcmeTelecom why am I charged for roaming?", minutes_ago=3, handle="hh")])
    env.drain()
    (entry,) = queue_json(env)["entries"]
    url = f"/brands/{BRAND}/triage/{entry['entry_id']}/handled"
    done = env.client.http.post(url, body=b"{}", headers=headers())
    assert done.status_code == 200
    body = json.loads(done.body)
    assert body["status"] == "handled" and body["changed"] and body["handled_by"] == "noa-ben-david"
    assert queue_json(env)["entries"] == []
    assert [e["entry_id"] for e in queue_json(env, "?status=handled")["entries"]] == [entry["entry_id"]]
    again = json.loads(env.client.http.post(url, body=b"{}", headers=headers()).body)
    assert again["changed"] is False and again["handled_at"] == body["handled_at"]
    # The same author writing again after the answer opens a new entry.
    enqueue([mention("h2", "@AcmeTelecom and why is it still on my bill?", minutes_ago=1, handle="hh")])
    env.drain()
    (fresh,) = queue_json(env)["entries"]
    assert fresh["entry_id"] != entry["entry_id"] and fresh["count"] == 1

    def status(method: str, path: str, **kw: Any) -> tuple[int, str]:
        response = getattr(env.client.http, method)(path, **kw)
        return response.status_code, json.loads(response.body).get("error", "")

    assert status("get", f"/brands/{BRAND}/triage")[0] == 401
    assert status("get", f"/brands/{BRAND}/triage?status=closed", headers=headers()) == (
        400, "status must be one of open, handled, all")
    assert status("get", f"/brands/{BRAND}/triage?language=xx", headers=headers())[0] == 400
    assert status("get", f"/brands/{BRAND}/triage?topic=Bad%20Topic", headers=headers())[0] == 400
    assert status("get", f"/brands/{BRAND}/triage?colour=red", headers=headers())[0] == 400
    assert status("get", "/brands/no-such-brand/triage", headers=headers())[0] == 404
    assert status("post", f"/brands/{BRAND}/triage/tq_{'0' * 20}/handled", body=b"{}", headers=headers())[0] == 404
    assert status("post", f"/brands/{BRAND}/triage/{'x' * 3000}/handled", body=b"{}", headers=headers())[0] == 404
    assert status("post", url, body=b"{}", headers={"content-type": "application/json"})[0] == 401


def test_reply_published_by_klaxon_marks_the_entry_handled(env: Any) -> None:
    enqueue([mention("r1", "@AcmeTelecom why is there no signal in Eilat?", minutes_ago=2, handle="rr")])
    env.drain()
    (entry,) = queue_json(env)["entries"]
    assert queue.handled_by_reply(BRAND, "x#nope", actor="klaxon") is None
    assert queue.handled_by_reply(BRAND, "x#r1", actor="yossi-mizrahi") == entry["entry_id"]
    (done,) = queue_json(env, "?status=handled")["entries"]
    assert done["handled_via"] == "publish" and done["handled_by"] == "yossi-mizrahi"


def test_publishing_a_reply_to_a_queued_post_marks_it_handled(env: Any) -> None:
    from chalicelib.incidents import service as incidents
    from chalicelib.incidents.service import Trigger
    from chalicelib.publish import service as publish
    from chalicelib.publish.outbox import OutboxPublisher
    from chalicelib.statements import service as statements

    enqueue([mention("gf1", "@GoldenFoods is the hummus I bought safe to eat?", minutes_ago=4, handle="mom",
                     brands=("golden-foods",))])
    env.drain()
    (entry,) = queue.list_entries("golden-foods")
    incident_id = incidents.open_or_update(
        brand="golden-foods", playbook="golden-product-recall", severity="sev1",
        trigger=Trigger(actor="detector", channel="ingest", summary="neg 140/5min, 9x usual"),
    ).incident.id
    facts = {
        "product": {"en": "Golden Foods hummus 400g"}, "what_we_know": {"en": "Listeria was found in one batch."},
        "what_we_are_doing": {"en": "We stopped the line."}, "next_update": {"en": "by 18:00 today"},
    }
    en = statements.draft_statements(incident_id, facts, ["en"], actor="maya-katz")[0]
    for person in ("sarah-whitfield", "avi-shapira", "james-okafor"):
        statements.approve(incident_id, "en", version_hash=en.hash, person_id=person)
    publish.publish_statement(incident_id, "en", publisher=OutboxPublisher(), actor="maya-katz",
                              version_hash=en.hash, reply_to="gf1")
    done = queue.get_entry("golden-foods", entry.entry_id)
    assert done.status == "handled" and done.handled_via == "publish" and done.handled_by == "maya-katz"


def test_phone_page_hebrew_rtl_signed_link_and_handled_button(env: Any) -> None:
    enqueue([
        mention("p1", "@AcmeTelecom למה אין קליטה בחיפה? <script>alert(1)</script>", minutes_ago=3, handle="pp"),
        mention("p2", "@AcmeTelecom why was I charged twice?", minutes_ago=2, handle="qq"),
    ])
    env.drain()
    link = env.client.http.get(f"/brands/{BRAND}/triage/link?person=noa-ben-david", headers=headers())
    assert link.status_code == 200
    token = json.loads(link.body)["url"].split("t=", 1)[1]
    page = env.client.http.get(f"/brands/{BRAND}/triage/page?t={token}")
    assert page.status_code == 200
    html = page.body.decode() if isinstance(page.body, bytes) else page.body
    assert '<html lang="he" dir="rtl">' in html and "פניות שמחכות למענה" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "תקלה" in html  # the topic's Hebrew label
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    filtered = env.client.http.get(f"/brands/{BRAND}/triage/page?t={token}&topic=billing")
    text = filtered.body.decode() if isinstance(filtered.body, bytes) else filtered.body
    assert "charged twice" in text and "חיפה" not in text
    # Refusals: no token, a token for another brand, a tampered token, a bad filter, a link for someone
    # who is not in the roster (the link names who pressed "handled").
    assert env.client.http.get(f"/brands/{BRAND}/triage/link?person=zz", headers=headers()).status_code == 404
    assert env.client.http.get(f"/brands/{BRAND}/triage/page").status_code == 403
    other = json.loads(env.client.http.get("/brands/golden-foods/triage/link?person=noa-ben-david",
                                           headers=headers()).body)["url"].split("t=", 1)[1]
    assert env.client.http.get(f"/brands/{BRAND}/triage/page?t={other}").status_code == 403
    assert env.client.http.get(f"/brands/{BRAND}/triage/page?t={token[:-2]}xx").status_code == 403
    assert env.client.http.get(f"/brands/{BRAND}/triage/page?t={token}&status=bogus").status_code == 400
    # The page's button: handled by the person the link names, then back to the page.
    target = next(e for e in queue_json(env)["entries"] if e["author"] == "qq")
    done = env.client.http.post(
        f"/brands/{BRAND}/triage/page/{target['entry_id']}/handled?t={token}",
        body=b"", headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 303 and done.headers["Location"].startswith(f"/brands/{BRAND}/triage/page?")
    (handled,) = queue_json(env, "?status=handled")["entries"]
    assert handled["handled_by"] == "noa-ben-david" and handled["handled_via"] == "page"
    forged = env.client.http.post(
        f"/brands/{BRAND}/triage/page/{target['entry_id']}/handled?t={other}",
        body=b"", headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert forged.status_code == 403


def test_daily_digest_api_and_sent_once(env: Any, subscribed: str) -> None:
    from chalicelib.counters.service import aggregate, commit

    # Yesterday in Jerusalem (the brand's zone): 3 posts needing replies, two answered (one in time).
    zone_now = datetime.now(tz=ZoneInfo("Asia/Jerusalem"))
    day = (zone_now.date() - timedelta(days=1)).isoformat()
    start, _ = digest.day_bounds(day, "Asia/Jerusalem")
    noon = start + 12 * 3600
    posts = [
        mention("y1", "@AcmeTelecom why no signal?", minutes_ago=0, handle="y1", now=noon),
        mention("y2", "@AcmeTelecom why the double charge?", minutes_ago=0, handle="y2", now=noon + 60),
        mention("y3", "@AcmeTelecom when will the fix come?", minutes_ago=0, handle="y3", now=noon + 120),
    ]
    from chalicelib.playbooks.loader import default_playbooks
    from chalicelib.triage.service import triage_batch

    labelled = [p.model_copy(update={"language": "en", "sentiment": s})
                for p, s in zip(posts, ["negative", "neutral", "neutral"], strict=True)]
    commit(token="dg1", totals=aggregate(labelled), ledger_ids=b"")
    triage_batch(labelled, default_playbooks(), now=noon + 180)
    ids = {e.author: e.entry_id for e in queue.list_entries(BRAND)}
    queue.mark_handled(BRAND, ids["y1"], actor="a", via="api", now=noon + 10 * 60)  # 10 min: in time
    queue.mark_handled(BRAND, ids["y2"], actor="a", via="api", now=noon + 60 + 50 * 60)  # 50 min: late (x: 30)
    response = env.client.http.get(f"/brands/{BRAND}/digest?date={day}", headers=headers())
    assert response.status_code == 200, response.body
    report = json.loads(response.body)
    assert report["volume"] == 3 and report["negative"] == 1 and report["negative_share"] == pytest.approx(1 / 3, 1e-3)
    assert report["needs_reply"] == 3 and report["answered"] == 2 and report["answered_within_target"] == 1
    assert report["answered_within_target_share"] == pytest.approx(1 / 3, 1e-3)
    assert report["median_response_minutes"] == pytest.approx(30.0)
    assert report["still_open"] == 1 and report["complete"] is True
    assert env.client.http.get(f"/brands/{BRAND}/digest?date=2026-13-01", headers=headers()).status_code == 400
    assert env.client.http.get(f"/brands/{BRAND}/digest", headers=headers()).status_code == 400
    assert env.client.http.get(f"/brands/{BRAND}/digest?date=2999-01-01", headers=headers()).status_code == 400
    # The sweeper sends it once per brand and day, however many sweeps run after the digest hour.
    after = start + 86400 + 8 * 3600  # 08:00 today, local
    sent = digest.send_due(after) + digest.send_due(after) + digest.send_due(after + 600)
    assert sorted(sent) == sorted([(BRAND, day), ("golden-foods", day)])
    events = [e for e in outbound_events(env, subscribed) if e["type"] == "digest.daily"]
    mine = [e for e in events if e["data"]["brand"] == BRAND]
    assert len(mine) == 1 and mine[0]["data"]["digest"]["answered_within_target"] == 1
    assert digest.send_due(start + 86400 + 3 * 3600) == []  # before the hour: nothing (and already sent)


def test_expired_items_are_absent_though_moto_keeps_them(env: Any) -> None:
    """moto never deletes items past their TTL (DynamoDB does so lazily): every reader ignores them."""
    from chalicelib.store.models import TriageMemberItem

    enqueue([mention("ttl1", "@AcmeTelecom why is the bill so high?", minutes_ago=2, handle="ttl")])
    env.drain()
    (entry,) = queue.list_entries(BRAND)
    past = int(time.time()) - 1
    entry.update(actions=[TriageEntryItem.expires.set(past)])
    member = TriageMemberItem.get(f"triage#{BRAND}", "mem#x#ttl1", consistent_read=True)
    member.update(actions=[TriageMemberItem.expires.set(past)])
    assert queue.list_entries(BRAND, status="all") == []
    response = env.client.http.post(f"/brands/{BRAND}/triage/{entry.entry_id}/handled", body=b"{}", headers=headers())
    assert response.status_code == 404
    # The member record expired too (past the deduplication horizon): the same post, delivered again,
    # is queued afresh, in a new entry rather than the expired one.
    enqueue([mention("ttl1", "@AcmeTelecom why is the bill so high?", minutes_ago=2, handle="ttl")])
    env.drain()
    assert [e.count for e in queue.list_entries(BRAND)] == [1]


def test_a_post_seen_again_after_its_member_expired_gets_a_new_entry_beside_its_live_old_one(env: Any) -> None:
    """A copy joining a post's entry keeps the entry alive past the post's own member record; once that
    entry is handled, the post delivered again after its record expired (past the deduplication horizon)
    is queued afresh, in a new entry, rather than colliding with its old entry's id and coming back
    contended on every delivery."""
    from chalicelib.playbooks.loader import default_playbooks
    from chalicelib.triage.service import rules_for

    rules = rules_for(BRAND, default_playbooks())
    day = 86400.0
    t0 = time.time()
    text = "@AcmeTelecom No service in Haifa since the morning. When will it be fixed?"
    first = mention("late1", text, minutes_ago=1, handle="orig", now=t0)
    assert queue.enqueue(first, rules, target_minutes=30, now=t0).outcome == "new"
    copy = mention("late2", text, minutes_ago=1, handle="copier", now=t0 + 20 * day)
    joined = queue.enqueue(copy, rules, target_minutes=30, now=t0 + 20 * day)
    assert joined.outcome == "joined"
    queue.mark_handled(BRAND, joined.entry_id, actor="noa-ben-david", via="api", now=t0 + 21 * day)
    again = queue.enqueue(first, rules, target_minutes=30, now=t0 + 31 * day)
    assert again.outcome == "new" and again.entry_id != joined.entry_id
    assert again.entry_id in {e.entry_id for e in queue.list_entries(BRAND, status="all", now=t0 + 31 * day)}


def test_batched_writes_give_what_one_by_one_gives(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """queue.enqueue_many on groups of posts (one transaction per group: items touched by several posts
    merged into one write) against queue.enqueue (a group of one per post) on the same stream in two
    fresh namespaces: the same items, field for field, and the same outcomes. The
    stream has a person's repeated posts, copies, a thread whose reply count raises urgency, a late older
    post, posts seen twice, and groups larger than one transaction holds."""
    from chalicelib.playbooks.loader import default_playbooks
    from chalicelib.triage.service import rules_for
    from klaxon import stack as local_stack

    now = time.time()
    stream = [m for m in burst() if BRAND in m.brands]
    stream += [
        mention("c0", "@AcmeTelecom why no call back since yesterday?", minutes_ago=55, handle="dana", now=now),
        mention("d4", "@AcmeTelecom No service in Haifa since the morning. When will it be fixed?", minutes_ago=1,
                handle="copy4", now=now),
    ]
    stream += [
        mention(f"f{i}", f"@AcmeTelecom no signal in town {chr(96 + i)} either, why?", minutes_ago=6 - i / 10,
                handle=f"t{i}", reply_to="999", now=now)
        for i in range(4, 30)
    ]
    stream += stream[:5]  # redelivered
    rng = random.Random(7)
    rules = rules_for(BRAND, default_playbooks())

    def queue_state() -> list[dict[str, Any]]:
        """Every triage item of the brand (entries, members, pointers, threads), all attributes but the
        entry's version (one-by-one bumps it per post, a batch once per write)."""
        from chalicelib.store.models import TriageMemberItem, TriagePointerItem, TriageThreadItem

        items = []
        for model, prefix in ((TriageEntryItem, "e#"), (TriageMemberItem, "mem#"), (TriagePointerItem, "ptr#"),
                              (TriageThreadItem, "thr#")):
            for item in model.query(f"triage#{BRAND}", model.sk.startswith(prefix), consistent_read=True):
                items.append({k: v for k, v in item.attribute_values.items() if k != "version"})
        return sorted(items, key=lambda d: str(d["sk"]))

    def fresh_namespace() -> None:
        monkeypatch.setenv("KLAXON_TABLE_PREFIX", f"t{rng.getrandbits(40):010x}")
        settings.cache_clear()
        local_stack.provision()

    one_by_one = [queue.enqueue(m, rules, target_minutes=30, now=now).outcome for m in stream]
    expected = queue_state()
    fresh_namespace()
    assert queue_state() == []
    batched: list[str] = []
    rest = stream[:]
    while rest:
        size = rng.choice([1, 3, 10, 40])
        group, rest = rest[:size], rest[size:]
        batched += [d.outcome for d in queue.enqueue_many(group, rules, target_minutes=lambda _: 30, now=now)]
    assert batched == one_by_one
    assert queue_state() == expected
    entries = [i for i in expected if str(i["sk"]).startswith("e#")]
    assert sum(int(e["count"]) for e in entries) == len(stream) - 5
    assert {int(e["urgency"]) for e in entries if e["author"].startswith("t")} != {  # the thread mattered
        int(e["urgency"]) for e in entries if e["author"] == "t1"
    }


def test_a_post_that_keeps_losing_the_triage_race_fails_alone_and_is_triaged_on_redelivery(
    env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy campaign with many ingest invocations at once: one post's triage transaction keeps losing
    to other writers. Only that post's record goes back to SQS (batchItemFailures), not the batch of
    up to 100; its batch-mates are queued and counted once, and the redelivered record, a duplicate for
    counting, is triaged then."""
    from pynamodb.exceptions import TransactWriteError

    from chalicelib.counters.service import read_series
    from klaxon.lambda_sqs import DeliveryStats, deliver, queue_arn, to_event

    now = time.time()
    posts = [mention(f"r{i}", f"@AcmeTelecom why is {w} down in {w}ville?", minutes_ago=5 - i, handle=f"h{i}", now=now)
             for i, w in enumerate(["calling", "data", "texting", "roaming", "billing"])]
    hot = posts[2]
    real_write = queue._write
    lost = []

    def others_always_win(plan: Any, *args: Any) -> None:
        _, clock, expires = args
        hot_id = queue.entry_id_for(BRAND, hot, queue._generation(clock, expires))
        if hot_id in {*plan.new_entries, *plan.joined}:
            # What moto answers when another writer changed an item first: a real cancelled transaction.
            other_writer = TriageEntryItem(queue.entry_pk(BRAND), "e#" + hot_id)
            try:
                with queue.TransactWrite(connection=queue._conn()) as tx:
                    tx.condition_check(TriageEntryItem, other_writer.pk, other_writer.sk,
                                       condition=TriageEntryItem.pk.exists())
            except TransactWriteError:
                lost.append(1)
                raise
            raise AssertionError("the hot entry must not exist while it keeps losing")
        real_write(plan, *args)

    monkeypatch.setattr(queue, "_write", others_always_win)
    enqueue(posts)
    messages = receive(env.sqs, env.queue_url, max_messages=10)
    assert len(messages) == len(posts)
    response = env.invoke_ingest(to_event(messages, queue_arn(env.sqs, env.queue_url))).payload
    hot_ids = [m["MessageId"] for m in messages if json.loads(m["Body"])["platform_id"] == hot.platform_id]
    assert response["batchItemFailures"] == [{"itemIdentifier": hot_ids[0]}]
    assert len(lost) == 5 + 8  # the group's rounds, then the post's own rounds alone
    assert sorted(e.author for e in queue.list_entries(BRAND)) == ["h0", "h1", "h3", "h4"]

    # Redelivered once the others stop winning: triaged now, counted once in all.
    monkeypatch.setattr(queue, "_write", real_write)
    stats = DeliveryStats()
    for message in messages:
        if message["MessageId"] in hot_ids:
            env.sqs.change_message_visibility(
                QueueUrl=env.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        else:
            env.sqs.delete_message(QueueUrl=env.queue_url, ReceiptHandle=message["ReceiptHandle"])
    again = receive(env.sqs, env.queue_url, max_messages=10)
    assert [m["MessageId"] for m in again] == hot_ids
    deliver(env.sqs, env.queue_url, queue_arn(env.sqs, env.queue_url), env.invoke_ingest, again, stats)
    assert (stats.received, stats.deleted, stats.failed) == (1, 1, 0)
    assert sorted(e.author for e in queue.list_entries(BRAND)) == ["h0", "h1", "h2", "h3", "h4"]
    start = int(now) // 3600 * 3600 - 3600
    total = sum(int(p.as_dict()["total"]) for p in read_series(BRAND, start=start, end=start + 3 * 3600, step=3600))
    assert total == len(posts)


def breaches_to_announce() -> list[str]:
    """Entry ids still carrying the breach outbox mark, whatever their age."""
    return sorted(e.entry_id for e in TriageEntryItem.due_index.query(queue.BREACH_ANNOUNCE))


def test_a_breach_whose_sweep_died_before_the_enqueue_is_relayed_once(
    env: Any, subscribed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep records two breaches and 'dies' before queueing their events. Each entry carries the
    outbox mark written with its breach; the relay leaves them alone for a minute, then sends each
    event once with the id the sweep would have used, also for an entry answered in the meantime
    (the breach happened), and answering does not drop the mark."""
    now = time.time()
    late = [mention(f"gone{i}", f"@AcmeTelecom why is my line dead in {town}?", minutes_ago=50 + i,
                    handle=f"gone{i}", now=now) for i, town in enumerate(["Haifa", "Eilat"])]
    enqueue(late)
    env.drain()
    monkeypatch.setattr(queue, "_emit_breach", lambda *_: 0)  # the sweep dies after each breach write
    claimed = sorted(e.entry_id for e in queue.check_breaches(now))
    assert len(claimed) == 2 and breaches_to_announce() == claimed
    assert outbound_events(env, subscribed) == []
    monkeypatch.undo()
    # Answered before the relay ran: handled, and the breach still owed to the subscribers.
    handled, changed = queue.mark_handled(BRAND, claimed[0], actor="noa-ben-david", via="api", now=now + 5)
    assert changed and handled.status == queue.HANDLED
    assert breaches_to_announce() == claimed

    assert queue.announce_breaches(now + 30) == 0  # within the minute: the sweep may still be sending
    from chalicelib.flows import sweep_triage

    assert sweep_triage(now + 61)["relayed_messages"] == 2
    events = [e for e in outbound_events(env, subscribed) if e["type"] == "triage.breach"]
    assert sorted(e["data"]["entry"]["entry_id"] for e in events) == claimed
    ids = {outbound.event_id_for_key(f"triage.breach|{BRAND}|{i}") for i in claimed}
    assert {e["event_id"] for e in events} == ids
    assert breaches_to_announce() == []
    assert queue.announce_breaches(now + 3600) == 0 and queue.check_breaches(now + 3600) == []


def test_a_digest_whose_sweep_died_before_the_enqueue_is_relayed_once(
    env: Any, subscribed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.store.models import DigestItem

    zone_now = datetime.now(tz=ZoneInfo("Asia/Jerusalem"))
    day = (zone_now.date() - timedelta(days=1)).isoformat()
    start, _ = digest.day_bounds(day, "Asia/Jerusalem")
    after = start + 86400 + 8 * 3600  # 08:00 today, local: past the digest hour
    monkeypatch.setattr(digest, "_emit", lambda *_: 0)  # the sweep dies after each claim
    assert sorted(digest.send_due(after)) == sorted([(BRAND, day), ("golden-foods", day)])
    monkeypatch.undo()
    marked = sorted(c.pk for c in DigestItem.announce_index.query(digest.ANNOUNCE))
    assert marked == [f"digest#{BRAND}", "digest#golden-foods"]
    assert digest.send_due(after + 10) == []  # claimed: never sent twice by the sweep itself
    assert digest.announce_pending(after + 30) == 0
    assert digest.announce_pending(after + 61) == 2
    events = [e for e in outbound_events(env, subscribed) if e["type"] == "digest.daily"]
    assert sorted(e["data"]["brand"] for e in events) == [BRAND, "golden-foods"]
    assert {e["event_id"] for e in events} == {
        outbound.event_id_for_key(f"digest.daily|{b}|{day}") for b in (BRAND, "golden-foods")
    }
    assert list(DigestItem.announce_index.query(digest.ANNOUNCE)) == []
    assert digest.announce_pending(after + 3600) == 0
