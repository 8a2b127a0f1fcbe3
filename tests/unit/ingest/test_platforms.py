"""Platform payloads → Mentions, driven by the real sample deliveries in tests/fixtures."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.ingest.brands import BrandMatcher
from chalicelib.ingest.models import Author, Mention
from chalicelib.ingest.platforms import Parsed, PayloadError, parse_generic, parse_meta, parse_x
from tests.conftest import FIXTURES
from tests.unit.ingest.conftest import load_fixture

ACME = ("acme-telecom",)
GOLDEN = ("golden-foods",)
Parser = Callable[[Any, BrandMatcher], Parsed]


def _parser(name: str) -> Parser:
    if name.startswith("x_"):
        return parse_x
    if name.startswith("meta_"):
        return parse_meta
    return parse_generic


def _parse(name: str, matcher: BrandMatcher) -> Parsed:
    return _parser(name)(load_fixture(name), matcher)


# (mentions, ignored, unmatched) for every fixture file.
EXPECTED_COUNTS: dict[str, tuple[int, int, int]] = {
    "x_tweet_mention.json": (1, 0, 0),
    "x_tweet_reply.json": (1, 0, 0),
    "x_tweet_extended.json": (1, 0, 0),
    "x_tweet_own.json": (0, 1, 0),
    "x_tweet_hebrew.json": (1, 0, 0),
    "x_favorite_events.json": (0, 1, 0),
    "x_follow_events.json": (0, 1, 0),
    "meta_page_feed_comment.json": (1, 1, 0),
    "meta_page_mention.json": (1, 0, 0),
    "meta_page_reaction.json": (0, 1, 0),
    "meta_instagram_comments.json": (2, 0, 0),
    "meta_instagram_mentions.json": (1, 0, 0),
    "generic_mention_created.json": (1, 0, 0),
    "generic_mention_batch.json": (2, 0, 1),
    # A retweet of the brand's own tweet, and the brand's own Instagram reply, are not mentions.
    "x_tweet_retweet.json": (0, 1, 0),
    "meta_instagram_own_reply.json": (0, 1, 0),
}
def test_every_fixture_has_an_expectation() -> None:
    names = {p.name for p in FIXTURES.glob("*.json")}
    assert names == set(EXPECTED_COUNTS)


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED_COUNTS.items()))
def test_fixture_counts(name: str, expected: tuple[int, int, int], matcher: BrandMatcher) -> None:
    parsed = _parse(name, matcher)
    assert (len(parsed.mentions), parsed.ignored, parsed.unmatched) == expected


def _only(name: str, matcher: BrandMatcher) -> Mention:
    parsed = _parse(name, matcher)
    assert len(parsed.mentions) == 1
    return parsed.mentions[0]


# ---------------------------------------------------------------- X


def test_x_plain_mention_fields(matcher: BrandMatcher) -> None:
    m = _only("x_tweet_mention.json", matcher)
    assert m == Mention(
        platform="x",
        platform_id="2124793605650123776",
        text="@AcmeTelecom my fiber has been down since 6am and your support line hangs up after 40 minutes. "
        "Third day in a row.",
        author=Author(id="1188223344", handle="dana_levi", name="Dana Levi", followers=1843),
        created_at=datetime(2026, 11, 23, 9, 14, 7, tzinfo=UTC),
        url="https://x.com/dana_levi/status/2124793605650123776",
        reply_to=None,
        brands=ACME,
    )
    assert m.created_at.tzinfo is UTC
    assert m.key == "x#2124793605650123776"


def test_x_reply_to_brand_keeps_the_replied_tweet(matcher: BrandMatcher) -> None:
    m = _only("x_tweet_reply.json", matcher)
    assert m.reply_to == "2124564818950045696"
    assert m.platform_id == "2124795526641823744"
    assert m.created_at == datetime(2026, 11, 23, 9, 21, 45, tzinfo=UTC)
    assert m.brands == ACME


def test_x_reply_matched_by_in_reply_to_alone(matcher: BrandMatcher) -> None:
    """A reply whose visible text no longer names the brand still belongs to it."""
    payload = load_fixture("x_tweet_reply.json")
    tweet = payload["tweet_create_events"][0]
    tweet["text"] = "Still no signal anywhere in Haifa."
    tweet["entities"]["user_mentions"] = []
    parsed = parse_x(payload, matcher)
    assert [m.brands for m in parsed.mentions] == [ACME]


def test_x_extended_tweet_uses_full_text(matcher: BrandMatcher) -> None:
    payload = load_fixture("x_tweet_extended.json")
    full = payload["tweet_create_events"][0]["extended_tweet"]["full_text"]
    m = parse_x(payload, matcher).mentions[0]
    assert m.text == full
    assert m.text.endswith("Cancelling. https://t.co/Xb3kP9qLmZ")
    assert len(m.text) > 140
    assert m.author == Author(id="1467300912838242305", handle="ronen_a", name="Ronen Amsalem", followers=5120)
    assert m.url == "https://x.com/ronen_a/status/2124798408128987137"


def test_x_own_tweet_is_ignored_not_unmatched(matcher: BrandMatcher) -> None:
    parsed = _parse("x_tweet_own.json", matcher)
    assert parsed.mentions == [] and parsed.ignored == 1 and parsed.unmatched == 0


def test_x_hebrew_tweet(matcher: BrandMatcher) -> None:
    m = _only("x_tweet_hebrew.json", matcher)
    assert m.text == "@AcmeTelecom כבר שלוש שעות אין אינטרנט בכל השכונה ואף אחד במוקד של אקמי לא עונה. ממש בושה."
    assert m.author == Author(id="982734561", handle="michal_ben", name="מיכל בן דוד", followers=312)
    assert m.created_at == datetime(2026, 11, 23, 10, 2, 51, tzinfo=UTC)
    assert m.url == "https://x.com/michal_ben/status/2124805869795426306"


def test_x_several_tweets_in_one_delivery(matcher: BrandMatcher) -> None:
    """X may batch events: every tweet is looked at, own tweets skipped, strangers unmatched."""
    payload = load_fixture("x_tweet_mention.json")
    tweets = payload["tweet_create_events"]
    tweets.append(load_fixture("x_tweet_own.json")["tweet_create_events"][0])
    tweets.append(load_fixture("x_tweet_hebrew.json")["tweet_create_events"][0])
    stranger = copy.deepcopy(tweets[0])
    stranger.update(id_str="2124793605650999999", text="nice weather in Eilat today")
    stranger["entities"]["user_mentions"] = []
    tweets.append(stranger)
    parsed = parse_x(payload, matcher)
    assert [m.platform_id for m in parsed.mentions] == ["2124793605650123776", "2124805869795426306"]
    assert (parsed.ignored, parsed.unmatched) == (1, 1)


def test_x_created_at_with_offset_is_converted_to_utc(matcher: BrandMatcher) -> None:
    payload = load_fixture("x_tweet_mention.json")
    payload["tweet_create_events"][0]["created_at"] = "Mon Nov 23 11:14:07 +0200 2026"
    m = parse_x(payload, matcher).mentions[0]
    assert m.created_at == datetime(2026, 11, 23, 9, 14, 7, tzinfo=UTC)
    assert m.created_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_x_ignored_counts_every_event(matcher: BrandMatcher) -> None:
    payload = load_fixture("x_favorite_events.json")
    payload["favorite_events"].append(copy.deepcopy(payload["favorite_events"][0]))
    payload["follow_events"] = load_fixture("x_follow_events.json")["follow_events"]
    assert parse_x(payload, matcher).ignored == 3


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ([], "body must be a JSON object"),
        ("tweet", "body must be a JSON object"),
        ({"for_user_id": "3316376208"}, "no event in the X delivery"),
        ({"for_user_id": "3316376208", "tweet_edit_events": []}, "unknown X event type 'tweet_edit_events'"),
        ({"tweet_create_events": []}, "for_user_id: Field required"),
        ({"for_user_id": "3316376208", "tweet_create_events": {}}, "tweet_create_events: Input should be a valid list"),
        (
            {"for_user_id": "3316376208", "tweet_create_events": [{"id_str": "1"}]},
            "tweet_create_events.0.created_at: Field required",
        ),
    ],
)
def test_x_malformed_delivery_is_payload_error(payload: Any, reason: str, matcher: BrandMatcher) -> None:
    with pytest.raises(PayloadError) as info:
        parse_x(payload, matcher)
    assert str(info.value) == reason


def test_x_bad_created_at_is_payload_error(matcher: BrandMatcher) -> None:
    payload = load_fixture("x_tweet_mention.json")
    payload["tweet_create_events"][0]["created_at"] = "2026-11-23T09:14:07Z"
    with pytest.raises(PayloadError, match="is not in X's format"):
        parse_x(payload, matcher)


@pytest.mark.parametrize("bad_id", ["2124793605650123776/1", "21247936#05650", "", "x" * 129])
def test_x_unsafe_tweet_id_is_payload_error(bad_id: str, matcher: BrandMatcher) -> None:
    payload = load_fixture("x_tweet_mention.json")
    payload["tweet_create_events"][0]["id_str"] = bad_id
    with pytest.raises(PayloadError, match="platform_id"):
        parse_x(payload, matcher)


def _x_user_name(name: str) -> Any:
    payload = load_fixture("x_tweet_mention.json")
    payload["tweet_create_events"][0]["user"]["name"] = name
    return payload


def _ig_username(name: str) -> Any:
    payload = load_fixture("meta_instagram_comments.json")
    payload["entry"][0]["changes"][0]["value"]["from"]["username"] = name
    return payload


@pytest.mark.parametrize(
    ("parser", "payload"),
    [
        (parse_x, _x_user_name("D" * 257)),
        (parse_x, _x_user_name("Dana \ud83d")),
        (parse_meta, _ig_username("s" * 129)),
    ],
    ids=["x-name-too-long", "x-name-lone-surrogate", "ig-username-too-long"],
)
def test_bad_author_is_payload_error_not_a_crash(parser: Parser, payload: Any, matcher: BrandMatcher) -> None:
    """Rejecting (PayloadError) or repairing the author are both fine; any other exception is a 500."""
    try:
        parsed = parser(payload, matcher)
    except PayloadError:
        return
    for m in parsed.mentions:
        for value in (m.author.name, m.author.handle):
            assert value is None or (len(value) <= 256 and value.encode("utf-8"))


def test_x_lone_surrogate_in_text_is_replaced(matcher: BrandMatcher) -> None:
    payload = load_fixture("x_tweet_mention.json")
    payload["tweet_create_events"][0]["text"] = "@AcmeTelecom down again \ud83d"
    m = parse_x(payload, matcher).mentions[0]
    assert m.text[:-1] == "@AcmeTelecom down again "
    assert m.text[-1] in ("\ufffd", "?")


# ---------------------------------------------------------------- Meta


def test_facebook_feed_comment_fields(matcher: BrandMatcher) -> None:
    parsed = _parse("meta_page_feed_comment.json", matcher)
    assert parsed.mentions == [
        Mention(
            platform="facebook",
            platform_id="122110573849201234_1593847261839204",
            text="שלושה ימים בלי אינטרנט ואף אחד באקמי לא חוזר אליי. איפה השירות שהבטחתם?",
            author=Author(id="7712345678901234", name="Noa Cohen"),
            created_at=datetime(2026, 11, 23, 9, 14, 50, tzinfo=UTC),
            url="https://www.facebook.com/122110573849201234_1593847261839204",
            reply_to="104857600000001_122110573849201234",
            brands=ACME,
        )
    ]
    assert parsed.ignored == 1  # the page's own reply in the same delivery


def test_facebook_comment_on_a_page_matches_by_page_id_alone(matcher: BrandMatcher) -> None:
    """A comment on the brand's page is the brand's, whatever its text says."""
    payload = load_fixture("meta_page_feed_comment.json")
    payload["entry"][0]["changes"][0]["value"]["message"] = "כמה זמן עוד?"
    assert [m.brands for m in parse_meta(payload, matcher).mentions] == [ACME]


def test_facebook_created_time_falls_back_to_entry_time(matcher: BrandMatcher) -> None:
    payload = load_fixture("meta_page_feed_comment.json")
    del payload["entry"][0]["changes"][0]["value"]["created_time"]
    m = parse_meta(payload, matcher).mentions[0]
    assert m.created_at == datetime.fromtimestamp(1795425301, tz=UTC)


def test_facebook_iso_created_time(matcher: BrandMatcher) -> None:
    payload = load_fixture("meta_page_feed_comment.json")
    payload["entry"][0]["changes"][0]["value"]["created_time"] = "2026-11-23T11:14:50+0200"
    m = parse_meta(payload, matcher).mentions[0]
    assert m.created_at == datetime(2026, 11, 23, 9, 14, 50, tzinfo=UTC)


def test_facebook_page_mention(matcher: BrandMatcher) -> None:
    m = _only("meta_page_mention.json", matcher)
    assert m.platform == "facebook"
    assert m.platform_id == "100089123456789_122098765432101234"
    assert m.text == "Third outage this month. Acme Telecom, you owe every customer in Haifa a refund."
    assert m.created_at == datetime(2026, 11, 23, 9, 33, 0, tzinfo=UTC)
    assert m.url == "https://www.facebook.com/100089123456789_122098765432101234"
    assert m.reply_to is None
    assert m.brands == ACME


def test_facebook_page_mention_author(matcher: BrandMatcher) -> None:
    m = _only("meta_page_mention.json", matcher)
    assert m.author == Author(id="100089123456789", name="Avi Mizrahi")


@pytest.mark.parametrize(
    ("verb", "item"), [("add", "reaction"), ("remove", "comment"), ("edited", "comment"), ("add", "like")]
)
def test_facebook_non_mention_feed_changes_are_ignored(verb: str, item: str, matcher: BrandMatcher) -> None:
    payload = load_fixture("meta_page_feed_comment.json")
    value = payload["entry"][0]["changes"][0]["value"]
    value.update(verb=verb, item=item)
    parsed = parse_meta(payload, matcher)
    assert (len(parsed.mentions), parsed.ignored, parsed.unmatched) == (0, 2, 0)


def test_instagram_comments_fields(matcher: BrandMatcher) -> None:
    parsed = _parse("meta_instagram_comments.json", matcher)
    when = datetime(2026, 11, 23, 9, 47, 40, tzinfo=UTC)
    assert parsed.mentions == [
        Mention(
            platform="instagram",
            platform_id="17998877665544332",
            text="@acmetelecom your app has been crashing since the update. I can't even pay my bill.",
            author=Author(id="6843021957310452", handle="shira.katz"),
            created_at=when,
            url=None,
            reply_to="18046523198765432",
            brands=ACME,
        ),
        Mention(
            platform="instagram",
            platform_id="17998877665544419",
            text="גם אצלי! אקמי תקנו את זה כבר",
            author=Author(id="7120938475610293", handle="omer_dahan"),
            created_at=when,
            url=None,
            reply_to="17998877665544332",
            brands=ACME,
        ),
    ]


def test_instagram_mentions(matcher: BrandMatcher) -> None:
    m = _only("meta_instagram_mentions.json", matcher)
    assert m.platform == "instagram"
    assert m.platform_id == "17895695668004550"
    assert m.text == ""
    assert m.created_at == datetime(2026, 11, 23, 9, 53, 8, tzinfo=UTC)
    assert m.brands == ACME


def test_meta_ignored_fields_and_messaging(matcher: BrandMatcher) -> None:
    payload = {
        "object": "page",
        "entry": [
            {
                "id": "104857600000001",
                "time": 1795425301,
                "changes": [{"field": "ratings", "value": {"verb": "add", "rating": 1}}],
                "messaging": [
                    {"sender": {"id": "1"}, "recipient": {"id": "104857600000001"}, "timestamp": 1795425301000}
                ],
            }
        ],
    }
    parsed = parse_meta(payload, matcher)
    assert (len(parsed.mentions), parsed.ignored, parsed.unmatched) == (0, 2, 0)


def test_meta_comment_on_another_page_without_brand_is_unmatched(matcher: BrandMatcher) -> None:
    payload = load_fixture("meta_page_feed_comment.json")
    payload["entry"][0]["id"] = "104857600000099"
    payload["entry"][0]["changes"][0]["value"]["message"] = "מישהו יודע מתי יש רכבת?"
    parsed = parse_meta(payload, matcher)
    # the second change's author was the brand page; on another page it is a stranger's Hebrew reply
    assert (len(parsed.mentions), parsed.unmatched) == (0, 2)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"object": "user", "entry": []}, "object: Input should be 'page' or 'instagram'"),
        ({"object": "page"}, "entry: Field required"),
        ([], "body: Input should be a valid dictionary or instance of _MetaDelivery"),
        (
            {
                "object": "page",
                "entry": [{"id": "104857600000001", "time": 1, "changes": [{"field": "leadgen", "value": {}}]}],
            },
            "unknown Meta page field 'leadgen'",
        ),
        (
            {
                "object": "instagram",
                "entry": [{"id": "17841400000000001", "time": 1, "changes": [{"field": "feed", "value": {}}]}],
            },
            "unknown Meta instagram field 'feed'",
        ),
        (
            {
                "object": "instagram",
                "entry": [
                    {
                        "id": "17841400000000001",
                        "changes": [{"field": "comments", "value": {"id": "1", "text": "acme telecom"}}],
                    }
                ],
            },
            "Meta change has no usable created_time or entry time",
        ),
        (
            {
                "object": "instagram",
                "entry": [
                    {
                        "id": "17841400000000001",
                        "time": 1795427260,
                        "changes": [{"field": "comments", "value": {"text": "hi"}}],
                    }
                ],
            },
            "Meta comments change lacks a string id or text",
        ),
    ],
    ids=["object", "no-entry", "list", "page-field", "ig-field", "no-time", "no-id"],
)
def test_meta_malformed_is_payload_error(payload: Any, reason: str, matcher: BrandMatcher) -> None:
    with pytest.raises(PayloadError) as info:
        parse_meta(payload, matcher)
    assert str(info.value) == reason


# ---------------------------------------------------------------- generic (Standard Webhooks)


def test_generic_mention_created(matcher: BrandMatcher) -> None:
    m = _only("generic_mention_created.json", matcher)
    assert m == Mention(
        platform="tiktok",
        platform_id="7441223809516834054",
        text="POV: you pay Acme for 1Gb fiber and get 12 Mbps at peak hours",
        author=Author(id="6998012345678901", handle="gal.tech", name="Gal | tech", followers=20417),
        created_at=datetime(2026, 11, 23, 9, 40, 10, tzinfo=UTC),
        url="https://www.tiktok.com/@gal.tech/video/7441223809516834054",
        brands=ACME,
    )


def test_generic_mention_batch(matcher: BrandMatcher) -> None:
    parsed = _parse("generic_mention_batch.json", matcher)
    assert [(m.platform, m.platform_id, m.brands, m.created_at) for m in parsed.mentions] == [
        ("reddit", "t1_m8x2kq1", ACME, datetime(2026, 11, 23, 9, 51, 7, tzinfo=UTC)),
        ("forum", "rotter-918273", GOLDEN, datetime(2026, 11, 23, 9, 53, 44, tzinfo=UTC)),
    ]
    assert parsed.mentions[0].reply_to == "t3_1h4k2pz"
    assert parsed.mentions[1].author == Author(handle="shlomi77", name="שלומי")
    assert parsed.unmatched == 1


def _generic(**data: Any) -> dict[str, Any]:
    base = load_fixture("generic_mention_created.json")
    base["data"].update(data)
    return base


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"type": "mention.deleted", "data": {}}, "type: Input should be 'mention.created' or 'mention.batch'"),
        (_generic(brands=["acme"]), "unknown brand 'acme'"),
        (_generic(brands=["acme-telecom", "Golden-Foods"]), "unknown brand 'Golden-Foods'"),
        (_generic(created_at="2026-11-23T09:40:10"), "created_at: Value error, created_at must carry a time zone"),
        (_generic(platform="TikTok"), "platform: String should match pattern '^[a-z0-9][a-z0-9_-]{0,31}$'"),
        (_generic(id="7441/2238"), "platform_id: String should match pattern '^[A-Za-z0-9_.:\\-]{1,128}$'"),
        (_generic(colour="red"), "colour: Extra inputs are not permitted"),
        (
            {"type": "mention.batch", "data": {"mentions": [{}] * 501}},
            "mentions: List should have at most 500 items after validation, not 501",
        ),
    ],
    ids=[
        "type",
        "unknown-brand",
        "unknown-second-brand",
        "naive-time",
        "platform-case",
        "id-slash",
        "extra-key",
        "batch-501",
    ],
)
def test_generic_malformed_is_payload_error(payload: Any, reason: str, matcher: BrandMatcher) -> None:
    with pytest.raises(PayloadError) as info:
        parse_generic(payload, matcher)
    assert str(info.value) == reason


def test_generic_explicit_empty_brands_is_unmatched(matcher: BrandMatcher) -> None:
    parsed = parse_generic(_generic(brands=[]), matcher)
    assert (parsed.mentions, parsed.unmatched) == ([], 1)
