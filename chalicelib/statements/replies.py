"""Personal reply drafts for the most-engaged individual complaints.

A person who wrote an angry post deserves an answer from a person: addressed to them, about what
they wrote, signed by the statement's signer. Replies only name the topic keyword found in the
complaint (a playbook crisis term) and never quote the complaint, so nothing a stranger wrote is
republished by the brand. Wording varies, and no two replies in a batch are identical, because a
wall of copy-pasted answers reads as a bot. These are drafts: like statements, they are published
only after approval.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence

from chalicelib.playbooks.models import Person, Playbook, Roster
from chalicelib.sentiment.crisis import has_crisis_term
from chalicelib.sentiment.language import detect_language
from chalicelib.statements import xtext
from chalicelib.statements.models import Complaint, ReplyDraft

_HANDLE = re.compile(r"^@?([A-Za-z0-9_.]{1,50})$")

_WORDING: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "open": (
            "I'm sorry.",
            "You're right to be upset.",
            "Thank you for telling us, and I'm sorry.",
            "I hear you, and I'm sorry this happened.",
            "I'm truly sorry about this.",
        ),
        "topic": (
            "What you wrote about “{topic}” is with our team right now.",
            "Reports of “{topic}” like yours are our top priority.",
            "We're looking into “{topic}” urgently, and your post is part of that.",
            "Your report about “{topic}” is what we're working on this minute.",
        ),
        "general": (
            "Our team is on it right now.",
            "We're working on this as our top priority.",
            "What you describe is with our team right now.",
            "We're on this, urgently.",
        ),
        "act": (
            "Our full update is on our page, and I'll keep it current.",
            "Please send us a DM so we can help you directly.",
            "I'll post the next update here as soon as we know more.",
            "Send us a DM with details and we'll follow up with you personally.",
        ),
    },
    # Hebrew wording avoids first-person forms that mark the signer's gender, and puts the topic
    # after "על" so any noun phrase from the playbook reads correctly.
    "he": {
        "open": (
            "סליחה, באמת.",
            "יש לך סיבה טובה לכעוס, וסליחה.",
            "תודה שכתבת לנו, וסליחה.",
            "סליחה על מה שעברת.",
            "זה לא בסדר, וסליחה.",
        ),
        "topic": (
            "מה שכתבת על {topic} נמצא עכשיו אצל הצוות שלנו.",
            "הדיווחים על {topic}, כולל שלך, בעדיפות עליונה אצלנו.",
            "אנחנו בודקים בדחיפות את מה שכתבת על {topic}.",
            "בדיווח שלך על {topic} מטפלים ממש עכשיו.",
        ),
        "general": (
            "הצוות שלנו מטפל בזה עכשיו.",
            "אנחנו מטפלים בזה בעדיפות עליונה.",
            "מה שתיארת נמצא עכשיו אצל הצוות שלנו.",
            "אנחנו על זה, בדחיפות.",
        ),
        "act": (
            "העדכון המלא נמצא בעמוד שלנו, ואעדכן אותו.",
            "אפשר לשלוח לנו הודעה פרטית כדי שנעזור ישירות.",
            "אעדכן כאן ברגע שנדע יותר.",
            "שלחו לנו הודעה פרטית עם הפרטים ונחזור אליכם אישית.",
        ),
    },
}


def find_topic(text: str, terms: Iterable[str]) -> str | None:
    """The most specific crisis term (longest first) that the complaint mentions, if any."""
    for term in sorted({t.strip() for t in terms if t.strip()}, key=lambda t: (-len(t), t)):
        if has_crisis_term(text, [term]):
            return term
    return None


def _address(complaint: Complaint) -> str:
    match = _HANDLE.match(complaint.handle.strip())
    if not match:
        raise ValueError(f"{complaint.handle!r} is not a handle")
    return f"@{match.group(1)}"


def _combinations(words: dict[str, tuple[str, ...]], topical: bool) -> Iterable[tuple[str, str, str]]:
    """Every (opening, middle, action) wording, interleaved so neighbours differ in every part."""
    middles = words["topic"] if topical else words["general"]
    combos = list(itertools.product(words["open"], middles, words["act"]))
    # Diagonal order: reply k takes the k-th of each list (mod its length), then shifted diagonals.
    n_open, n_mid, n_act = len(words["open"]), len(middles), len(words["act"])
    seen: set[tuple[str, str, str]] = set()
    for shift in range(len(combos)):
        for k in range(max(n_open, n_mid, n_act)):
            combo = (words["open"][k % n_open], middles[(k + shift) % n_mid], words["act"][(k + 2 * shift) % n_act])
            if combo not in seen:
                seen.add(combo)
                yield combo
    for combo in combos:
        if combo not in seen:
            yield combo


def draft_replies(
    complaints: Sequence[Complaint],
    *,
    signer: Person | Mapping[str, Person],
    terms: Iterable[str],
    limit: int = 5,
    languages: Iterable[str] = ("he", "en"),
) -> list[ReplyDraft]:
    """Reply drafts for the `limit` most-engaged complaints, each unique, each signed by `signer`.

    `terms` are the playbook's crisis terms (all languages); the reply names the one found in the
    complaint. The reply's language follows the complaint (Hebrew or English; others get English).
    `signer` is one person, or {lang: person} (each language's statement signer).
    """
    supported = set(languages) & set(_WORDING)
    term_list = list(terms)
    ranked = sorted(complaints, key=lambda c: (-c.engagement, c.id))[: max(limit, 0)]
    used: set[str] = set()
    pools: dict[tuple[str, bool], Iterable[tuple[str, str, str]]] = {}
    out: list[ReplyDraft] = []
    for complaint in ranked:
        detected = detect_language(complaint.text)
        lang = detected if detected in supported else ("en" if "en" in supported else sorted(supported)[0])
        topic = find_topic(complaint.text, term_list)
        key = (lang, topic is not None)
        pool = pools.setdefault(key, iter(_combinations(_WORDING[lang], topic is not None)))
        address = _address(complaint)
        person = signer if isinstance(signer, Person) else signer[lang]
        sign = f"— {person.name_in(lang)}"
        for opening, middle, action in pool:
            body = middle.format(topic=topic) if topic else middle
            text = f"{address} {opening} {body} {action}\n{sign}"
            if complaint.platform == "x" and not xtext.fits_x(text):
                text = f"{address} {opening} {body}\n{sign}"
            if text not in used:
                break
        else:  # wording exhausted (more replies than combinations): number it rather than repeat
            text = f"{text} ({len(out) + 1})"
        used.add(text)
        out.append(
            ReplyDraft(
                platform=complaint.platform, reply_to=complaint.id, handle=address, lang=lang, topic=topic, text=text
            )
        )
    return out


def replies_for_playbook(
    complaints: Sequence[Complaint], playbook: Playbook, roster: Roster, *, limit: int = 5
) -> list[ReplyDraft]:
    """`draft_replies` with the playbook's crisis terms, each language signed by its statement's signer."""
    signers = {lang: roster.person(st.signer) for lang, st in playbook.statements.items()}
    return draft_replies(
        complaints, signer=signers, terms=playbook.triggers.all_terms(), limit=limit, languages=tuple(signers)
    )
