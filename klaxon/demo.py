"""`klaxon demo`: replay 45 minutes of mentions with a crisis in them through the local stack.

Everything goes over real HTTP to the Chalice routes with real platform signatures, through
SQS (moto) and the ingest handler, exactly as in production. The stream is generated from a
fixed seed: a daily-shaped baseline for two brands, then an outage at Acme Telecom whose
negative mentions climb eightfold within ten minutes. Texts are in `demo_data/texts.json`,
written for this project, in Hebrew and English. Some deliveries are sent twice, as platforms
do when they retry, to show deduplication.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from klaxon.signing import meta_headers, standard_headers, x_headers

TEXTS = json.loads((Path(__file__).parent / "demo_data" / "texts.json").read_text(encoding="utf-8"))
MINUTES = 45
CRISIS_START = 25
HISTORY_DAYS = 3
SEED = 20261123
RETRY_SHARE = 0.06

BRANDS = {
    "acme-telecom": {"x": "AcmeTelecom", "page": "104857600000001", "he": "אקמי", "en": "Acme Telecom", "rate": 18.0},
    "golden-foods": {
        "x": "GoldenFoods",
        "page": "104857600000002",
        "he": "גולדן פודס",
        "en": "Golden Foods",
        "rate": 3.0,
    },
}


@dataclass
class Planned:
    minute: int
    brand: str
    platform: str
    language: str
    sentiment: str
    text: str
    created_at: datetime
    platform_id: str


@dataclass
class Tally:
    deliveries: int = 0
    retries: int = 0
    accepted: int = 0
    rejected: int = 0
    mentions: int = 0
    by_minute: Counter[int] = field(default_factory=Counter)


def _daily(moment: datetime) -> float:
    """Mentions follow the waking day: a third more at the afternoon peak, a third less at night."""
    hour = moment.hour + moment.minute / 60
    return 1.0 + 0.35 * math.sin((hour - 9) / 24 * 2 * math.pi)


def history(brand: str, start: datetime, rng: random.Random) -> list[tuple[int, float, float]]:
    """Per-minute (start, negative, total) for the days before the replay: the brand's normal."""
    rate = float(BRANDS[brand]["rate"])
    out = []
    for minute in range(HISTORY_DAYS * 1440):
        moment = start - timedelta(minutes=HISTORY_DAYS * 1440 - minute)
        total = _poisson(rng, rate * _daily(moment))
        negative = sum(1 for _ in range(total) if rng.random() < 0.2)
        out.append((int(moment.timestamp()), float(negative), float(total)))
    return out


def plan_stream(start: datetime, rng: random.Random) -> list[Planned]:
    """Mentions per minute: Poisson around a daily curve, plus the crisis negatives."""
    out: list[Planned] = []
    serial = 0
    for minute in range(MINUTES):
        daily = _daily(start + timedelta(minutes=minute))
        for brand, info in BRANDS.items():
            base = float(info["rate"]) * daily
            crisis = 0.0
            if brand == "acme-telecom" and minute >= CRISIS_START:
                crisis = base * 0.25 * min(8.0, 1 + 7 * (minute - CRISIS_START) / 10)
            for kind, rate in (("base", base), ("crisis", crisis)):
                for _ in range(_poisson(rng, rate)):
                    serial += 1
                    language = "he" if rng.random() < 0.55 else "en"
                    if kind == "crisis":
                        sentiment = "negative"
                    else:
                        sentiment = rng.choices(["negative", "neutral", "positive"], [0.2, 0.45, 0.35])[0]
                    platform = rng.choices(["x", "facebook", "generic"], [0.6, 0.28, 0.12])[0]
                    name = f"@{info['x']}" if platform == "x" else str(info[language])
                    text = rng.choice(TEXTS[language][sentiment]).replace("{brand}", name)
                    created = start + timedelta(minutes=minute, seconds=rng.randrange(60))
                    out.append(
                        Planned(
                            minute, brand, platform, language, sentiment, text, created, f"{1900000000000 + serial}"
                        )
                    )
    return out


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _x_body(items: list[Planned], rng: random.Random) -> bytes:
    events = []
    for m in items:
        user = f"user{int(m.platform_id) % 997}"
        events.append(
            {
                "id_str": m.platform_id,
                "created_at": m.created_at.strftime("%a %b %d %H:%M:%S +0000 %Y"),
                "text": m.text,
                "user": {
                    "id_str": str(10_000 + int(m.platform_id) % 997),
                    "screen_name": user,
                    "name": user.title(),
                    "followers_count": rng.randrange(20, 5000),
                },
                "entities": {"user_mentions": [{"screen_name": BRANDS[m.brand]["x"]}]},
                "lang": m.language,
            }
        )
    return json.dumps({"for_user_id": "2244994945", "tweet_create_events": events}, ensure_ascii=False).encode()


def _meta_body(items: list[Planned]) -> bytes:
    entries: dict[str, list[dict[str, Any]]] = {}
    for m in items:
        page = str(BRANDS[m.brand]["page"])
        entries.setdefault(page, []).append(
            {
                "field": "feed",
                "value": {
                    "item": "comment",
                    "verb": "add",
                    "comment_id": f"{page}_{m.platform_id}",
                    "post_id": f"{page}_1000",
                    "parent_id": f"{page}_1000",
                    "message": m.text,
                    "from": {"id": str(20_000 + int(m.platform_id) % 991), "name": "Demo Commenter"},
                    "created_time": int(m.created_at.timestamp()),
                },
            }
        )
    body = {"object": "page", "entry": [{"id": p, "time": int(time.time()), "changes": c} for p, c in entries.items()]}
    return json.dumps(body, ensure_ascii=False).encode()


def _generic_body(items: list[Planned]) -> bytes:
    mentions = [
        {
            "platform": "forum",
            "id": m.platform_id,
            "text": m.text,
            "created_at": m.created_at.isoformat(),
            "brands": [m.brand],
            "author": {"handle": f"member{int(m.platform_id) % 89}"},
        }
        for m in items
    ]
    return json.dumps({"type": "mention.batch", "data": {"mentions": mentions}}, ensure_ascii=False).encode()


def _post(base_url: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(base_url + path, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def send_minute(base_url: str, items: list[Planned], rng: random.Random, tally: Tally) -> None:
    """One delivery per platform for this minute's mentions, signed as each platform signs."""
    from chalicelib.config import settings

    cfg = settings()
    groups: dict[str, list[Planned]] = {}
    for m in items:
        groups.setdefault(m.platform, []).append(m)
    for platform, group in groups.items():
        if platform == "x":
            path, body = "/webhooks/x", _x_body(group, rng)
            headers = x_headers(cfg.x_consumer_secret, body)
        elif platform == "facebook":
            path, body = "/webhooks/meta", _meta_body(group)
            headers = meta_headers(cfg.meta_app_secret, body)
        else:
            path, body = "/webhooks/generic", _generic_body(group)
            headers = standard_headers(cfg.webhook_secret, body)
        copies = 2 if rng.random() < RETRY_SHARE else 1
        for _ in range(copies):
            status, reply = _post(base_url, path, body, headers)
            tally.deliveries += 1
            if status == 200:
                tally.accepted += 1
            else:
                tally.rejected += 1
                print(f"  ! {path} answered {status}: {reply.get('error')}", file=sys.stderr)
        tally.retries += copies - 1
        tally.mentions += len(group)


def _backpressure(queue_url: str, limit: int = 40) -> None:
    """Keep the local queue short: moto's SQS slows down quadratically with queue depth."""
    from chalicelib.ingest.queue import sqs_client

    while True:
        attrs = sqs_client().get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
        if int(attrs["Attributes"]["ApproximateNumberOfMessages"]) <= limit:
            return
        time.sleep(0.2)


def _get(base_url: str, path: str) -> dict[str, Any]:
    from chalicelib.config import settings

    request = urllib.request.Request(base_url + path, headers={"x-api-key": settings().api_key})
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def _series(base_url: str, brand: str, start: datetime) -> list[dict[str, Any]]:
    end = start + timedelta(minutes=MINUTES + 1)
    query = f"from={int(start.timestamp()) // 60 * 60}&to={int(end.timestamp())}&step=60"
    return list(_get(base_url, f"/brands/{brand}/counts?{query}")["points"])


def main(speed: float = 0.0) -> int:
    from klaxon.stack import free_port, running

    started = time.monotonic()
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # the demo tells the story itself
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # no EMF lines between its own
    outbox = Path(".klaxon") / "outbox.jsonl"
    outbox.parent.mkdir(exist_ok=True)
    os.environ.setdefault("KLAXON_OUTBOX_FILE", str(outbox.resolve()))
    logging.getLogger().setLevel(logging.WARNING)
    rng = random.Random(SEED)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=MINUTES)
    stream = plan_stream(start, rng)
    print("Klaxon demo: starting the local stack (moto DynamoDB + SQS, Chalice routes, SQS poller) ...")
    with running(http_port=free_port(), quiet=True) as stack:
        from chalicelib.alerts.service import params_for, warm_start
        from chalicelib.playbooks.loader import default_playbooks

        for brand in BRANDS:
            warm_start(brand, history(brand, start, rng), params_for(brand, default_playbooks()))
        print(f"  detector warmed with {HISTORY_DAYS} days of per-minute history for {len(BRANDS)} brands")
        print(f"  routes at {stack.base_url}; replaying {len(stream)} mentions over {MINUTES} simulated minutes")
        tally = Tally()
        by_minute: dict[int, list[Planned]] = {}
        for m in stream:
            by_minute.setdefault(m.minute, []).append(m)
        for minute in range(MINUTES):
            send_minute(stack.base_url, by_minute.get(minute, []), rng, tally)
            _backpressure(stack.queue_url)
            if minute % 5 == 4:
                print(
                    f"  t+{minute + 1:3d} min  deliveries {tally.deliveries:4d} (retries {tally.retries:2d})  "
                    f"mentions sent {tally.mentions:5d}"
                )
            if speed:
                time.sleep(speed)
        expected = {b: sum(1 for m in stream if m.brand == b) for b in BRANDS}
        print("  waiting for the ingest queue to drain ...")
        deadline = time.monotonic() + 180
        while True:
            series = {b: _series(stack.base_url, b, start) for b in BRANDS}
            counted = {b: sum(p["total"] for p in s) for b, s in series.items()}
            if counted == expected or time.monotonic() > deadline:
                break
            time.sleep(1)
        _summary(series, start, tally, expected, counted)
        opened = _incidents(stack.base_url)
        paged = acked = drafted = published = False
        if opened:
            incident = opened[0]
            paged = _pages(stack, incident)
            acked = _acknowledge(stack, incident)
            drafts = _statements(stack.base_url, incident)
            _approval_requests(stack)
            drafted = bool(drafts)
            published = bool(drafts) and _approve_and_publish(stack.base_url, incident, drafts)
        ok = counted == expected and tally.rejected == 0 and bool(opened) and paged and acked and drafted and published
    print(f"demo finished in {time.monotonic() - started:.0f}s: {'OK' if ok else 'FAILED (see above)'}")
    return 0 if ok else 1


def _post_json(base_url: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    from chalicelib.config import settings

    headers = {"content-type": "application/json", "x-api-key": settings().api_key, "x-klaxon-actor": "demo-staff"}
    return _post(base_url, path, json.dumps(body, ensure_ascii=False).encode(), headers)


def _pages(stack: Any, incident: dict[str, Any]) -> bool:
    """The SMS the on-call person got (through the real twilio client, into the local fake Twilio)."""
    deadline = time.monotonic() + 10
    while not stack.twilio.messages and time.monotonic() < deadline:
        time.sleep(0.2)
    messages = stack.twilio.messages
    print(f"\nSMS pages sent ({len(messages)}), via the twilio client to the local fake Twilio:")
    for message in messages:
        print(f"  to {message.to} [{message.num_segments} segment(s), {message.status}]:")
        for line in message.body.splitlines():
            print(f"    | {line}")
    _open_page_link(messages[0].body if messages else "")
    return bool(messages)


def _open_page_link(body: str) -> None:
    """Open the link in the first page as the on-call person's phone would: their own signed token."""
    import re

    match = re.search(r"https?://\S+/i/\d+\?t=[\w-]+", body)
    if not match:
        print("  (no incident link in the page: KLAXON_PUBLIC_URL unset or no room)")
        return
    try:
        with urllib.request.urlopen(match[0], timeout=30) as response:
            status, html = response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        status, html = exc.code, ""
    title = re.search(r"<title>(.*?)</title>", html, re.S)
    print(f"  the page's link opens the incident page -> HTTP {status}" + (f": {title[1].strip()}" if title else ""))
    without = match[0].split("?")[0]
    try:
        urllib.request.urlopen(without, timeout=30)
        print(f"  {without} without the token -> HTTP 200 (unexpected)")
    except urllib.error.HTTPError as exc:
        print(f"  the same link without its token -> HTTP {exc.code} (the 4-digit code alone shows nothing)")


def _acknowledge(stack: Any, incident: dict[str, Any]) -> bool:
    """The on-call person answers the page by SMS; Twilio posts the reply to /sms/inbound, signed."""
    messages = stack.twilio.messages
    if not messages:
        return False
    page = messages[0]
    reply = stack.twilio.send_inbound(
        f"{stack.base_url}/sms/inbound", from_=page.to, to=page.from_ or "", body=f"ACK {incident['code']}"
    )
    status = _get(stack.base_url, f"/incidents/{incident['id']}")["status"]
    print(
        f'\n{page.to} replied "ACK {incident["code"]}" -> HTTP {reply.status}; Klaxon answered: '
        f"{_twiml_text(reply.body)}"
    )
    print(f"  incident status is now: {status}")
    return status == "acknowledged"


def _twiml_text(body: str | bytes) -> str:
    import re

    text = body.decode() if isinstance(body, bytes) else body
    found = re.search(r"<Message>(.*?)</Message>", text, re.S)
    return found.group(1) if found else "(no reply)"


DEMO_FACTS = {
    "he": {
        "product": "שירותי הסלולר והאינטרנט",
        "what_we_know": "תקלה באתר התקשורת המרכזי שלנו בפתח תקווה פוגעת בשיחות ובגלישה באזור המרכז מאז 11:40.",
        "what_we_are_doing": "צוותי הרשת שלנו באתר ומעבירים את התעבורה לאתר הגיבוי.",
        "next_update": "עד 13:30",
    },
    "en": {
        "product": "mobile and home internet service",
        "what_we_know": "A fault at our main switching site in Petah Tikva has cut calls and data in central Israel "
        "since 11:40.",
        "what_we_are_doing": "Our network engineers are on site and moving traffic to the backup site.",
        "next_update": "by 13:30",
    },
}


def _statements(base_url: str, incident: dict[str, Any]) -> dict[str, Any]:
    """Holding statements drafted from the playbook, signed by a named person, awaiting approval."""
    facts = {key: {lang: DEMO_FACTS[lang][key] for lang in DEMO_FACTS} for key in DEMO_FACTS["en"]}
    status, body = _post_json(base_url, f"/incidents/{incident['id']}/statements", {"facts": facts, "links": True})
    if status != 201:
        print(f"\nDrafting statements failed: HTTP {status}: {body.get('error')}")
        return {}
    for draft in body["drafts"]:
        signer = draft["signer"]
        print(
            f"\nHolding statement ({draft['lang']}, version {draft['version']}, sha256 {draft['version_hash'][:12]}…), "
            f"signed by {signer['name']}, {signer['role']}; awaiting approval "
            f"({', '.join(draft['approval']['waiting_for'])}):"
        )
        for line in draft["text"].splitlines():
            print(f"    | {line}")
        for person, url in body.get("links", {}).get(draft["lang"], {}).items():
            print(f"  approval page for {person}: {url}")
    return body


def _approval_requests(stack: Any) -> None:
    """The SMS each signer and approver got when the statements were drafted: one each, own language."""
    deadline = time.monotonic() + 10
    requests: list[Any] = []
    while time.monotonic() < deadline:
        requests = [m for m in stack.twilio.messages if "/a/" in m.body]
        if requests:
            break
        time.sleep(0.2)
    print(f"\nApproval requests texted ({len(requests)}), each with the person's own link:")
    for message in requests:
        print(f"  to {message.to} [{message.num_segments} segment(s)]:")
        for line in message.body.splitlines():
            print(f"    | {line}")


def _approve_and_publish(base_url: str, incident: dict[str, Any], drafts: dict[str, Any]) -> bool:
    """The signer and one approver press Approve on their own pages; then the exact text is published."""
    from urllib.parse import urlencode

    lang = "he"
    draft = next(d for d in drafts["drafts"] if d["lang"] == lang)
    links = drafts["links"][lang]
    approvers = [draft["signer"]["id"], *draft["approvers"][: draft["quorum"]]]
    print(f"\nApprovals of the {lang} statement, each on the person's own signed link:")
    for person in approvers:
        url = links[person]
        form = urlencode({"action": "approve", "version_hash": draft["version_hash"]}).encode()
        path = url[len(base_url) :]
        status, _ = _post_form(base_url, path, form)
        print(f"  {person} approved version {draft['version_hash'][:12]}… -> HTTP {status}")
    status, body = _post_json(
        base_url,
        f"/incidents/{incident['id']}/publish",
        {"lang": lang, "version_hash": draft["version_hash"], "platform": "outbox"},
    )
    if status != 200:
        print(f"  publishing failed: HTTP {status}: {body.get('error')}")
        return False
    final = _get(base_url, f"/incidents/{incident['id']}")
    outbox = os.environ.get("KLAXON_OUTBOX_FILE")
    print(f"Published the approved {lang} statement to the local outbox: {body}")
    print(f"  outbox file: {outbox}" if outbox else "  outbox: items in the incidents table")
    print(f"  incident status: {final['status']}; timeline has {len(final['timeline'])} entries")
    return final["status"] == "published"


def _post_form(base_url: str, path: str, body: bytes) -> tuple[int, str]:
    request = urllib.request.Request(
        base_url + path, data=body, headers={"content-type": "application/x-www-form-urlencoded"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _incidents(base_url: str) -> list[dict[str, Any]]:
    """Show what the spike opened: the incident, its figures and its timeline so far."""
    listed = _get(base_url, "/incidents")["incidents"]
    if not listed:
        print("\nNo incident was opened (the detector saw no spike).")
        return []
    for summary in listed:
        incident = _get(base_url, f"/incidents/{summary['id']}")
        opened = datetime.fromtimestamp(incident["opened_at"], tz=UTC)
        print(
            f"\nIncident {incident['id']}  code {incident['code']}  [{incident['severity']}] {incident['brand']} / "
            f"{incident['playbook']}"
        )
        print(
            f"  status {incident['status']}, opened {opened:%H:%M:%S} UTC by {incident['opened_by']}: "
            f"{incident['summary']}"
        )
        print(
            f"  alarms merged into it: {incident['alarms']}; peak ratio {incident['peak_ratio']:.1f}x; "
            f"acknowledge by {datetime.fromtimestamp(incident['ack_due'], tz=UTC):%H:%M} UTC"
        )
        for entry in incident["timeline"]:
            at = datetime.fromtimestamp(entry["at"], tz=UTC)
            print(
                f"    {at:%H:%M:%S}  {entry['actor']:>9s} via {entry['channel']:<8s} {entry['action']}: "
                f"{entry['detail'] or ''}"
            )
    return list(listed)


def _summary(
    series: dict[str, list[dict[str, Any]]],
    start: datetime,
    tally: Tally,
    expected: dict[str, int],
    counted: dict[str, int],
) -> None:
    acme = series["acme-telecom"]
    print("\nAcme Telecom, per minute (last 45 simulated minutes; # = 2 negative mentions):")
    print("  minute (UTC)  total  neg  neu  pos   he   en")
    for point in acme[-46:-1]:
        bar = "#" * ((point["negative"] + 1) // 2)
        print(
            f"  {point['start'][11:16]}        {point['total']:5d} {point['negative']:4d} {point['neutral']:4d} "
            f"{point['positive']:4d} {point['languages']['he']:4d} {point['languages']['en']:4d}  {bar}"
        )
    print("\nTotals")
    print(
        f"  webhook deliveries accepted: {tally.accepted} (of which platform retries: {tally.retries}; "
        f"rejected: {tally.rejected})"
    )
    for brand in expected:
        print(
            f"  {brand:14s} distinct mentions sent {expected[brand]:5d}   counted {counted[brand]:5d}   "
            f"{'exact' if expected[brand] == counted[brand] else 'MISMATCH'}"
        )
    print(f"  duplicates from retried deliveries were dropped by the ingest ledger (stream started {start:%H:%M} UTC)")
