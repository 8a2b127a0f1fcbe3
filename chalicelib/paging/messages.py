"""The page text and the replies to inbound SMS, in the recipient's language (Hebrew or English).

A page is four lines: who/what (severity and brand), what spiked (the incident summary), where
to look (code and short link) and how to acknowledge. It must fit in two SMS segments; only the
summary is ever shortened, never the reply instruction (a page nobody can acknowledge keeps
escalating). Hebrew lines start with a Hebrew word so phones lay each line out right to left even
when it carries Latin tokens (SEV1, the link, ACK).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chalicelib.paging.sms import fit, gsm_friendly, segments

SUPPORTED = ("he", "en")
MAX_SEGMENTS = 2
ACK_WORDS = {"en": "ACK", "he": "ACK"}
"""The keyword the page asks for. Hebrew speakers may also answer "אישור <code>" (see service)."""


def language_for(languages: list[str] | tuple[str, ...]) -> str:
    """The first of a person's languages that pages are written in; English otherwise."""
    return next((lang for lang in languages if lang in SUPPORTED), "en")


def short_link(public_url: str | None, code: str, token: str | None = None) -> str | None:
    """KLAXON_PUBLIC_URL + "/i/<code>?t=<token>" (the recipient's signed token), or None without a public URL."""
    if not public_url:
        return None
    return f"{public_url.rstrip('/')}/i/{code}" + (f"?t={token}" if token else "")


# --- the summary in Hebrew --------------------------------------------------------------------

_COUNT = re.compile(
    r"^neg (?P<n>[\d.]+k?)/(?P<w>\d+)(?P<u>min|h|s), (?P<r>[\d.]+)x usual(?: \(expected (?P<e>[\d.]+k?)\))?$"
)
_SHARE = re.compile(
    r"^neg share (?P<n>\d+)%/(?P<w>\d+)(?P<u>min|h|s), (?P<r>[\d.]+)x usual(?: \(expected (?P<e>\d+)%\))?$"
)
_HE_UNITS = {"min": "דק׳", "h": "שע׳", "s": "שנ׳"}


def _he_window(amount: str, unit: str) -> str:
    if unit == "h" and amount == "1":
        return "בשעה האחרונה"
    if unit == "min" and amount == "1":
        return "בדקה האחרונה"
    return f"ב-{amount} {_HE_UNITS[unit]}"


def _he_ratio(ratio: str) -> str:
    return f"פי {ratio.removesuffix('.0')} מהרגיל"


def summary_in(summary: str, lang: str) -> str:
    """The detector's summary ("neg 212/5min, 9.2x usual (expected 23)") in `lang`.

    Only the detector's own format is translated; a summary a person typed is kept as written.
    """
    if lang != "he":
        return summary
    text = summary.strip()
    if match := _COUNT.match(text):
        count = "תגובה שלילית אחת" if match["n"] == "1" else f"{match['n']} תגובות שליליות"
        he = f"{count} {_he_window(match['w'], match['u'])}, {_he_ratio(match['r'])}"
        return he + (f" (בדרך כלל {match['e']})" if match["e"] else "")
    if match := _SHARE.match(text):
        he = f"{match['n']}% מהתגובות שליליות {_he_window(match['w'], match['u'])}, {_he_ratio(match['r'])}"
        return he + (f" (בדרך כלל {match['e']}%)" if match["e"] else "")
    return text


# --- the page ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """What a page says, before it is written in a language."""

    severity: str
    brand: str
    summary: str
    code: str
    link: str | None = None


def ack_line(code: str, lang: str) -> str:
    """The reply instruction: the one line that is never cut."""
    if lang == "he":
        return f"לאישור השיבו ACK {code}"
    return f"Reply ACK {code}"


def _lines(page: Page, lang: str, summary: str, with_link: bool) -> list[str]:
    severity = page.severity.upper()
    link = page.link if with_link else None
    if lang == "he":
        head = f"קלקסון {severity}: {page.brand}"
        # The code is in the link and in the reply line; two segments of UCS-2 leave no room to repeat it.
        where = link or f"קוד אירוע {page.code}"
    else:
        head = f"KLAXON {severity} {page.brand}"
        where = f"Incident {page.code}: {link}" if link else f"Incident {page.code}"
    return [line for line in (head, summary, where, ack_line(page.code, lang)) if line]


def _variants(summary: str) -> list[str]:
    """The summary, then shorter whole clauses: without its trailing parenthesis ("(expected 23)"),
    then without its last comma clause ("31x usual"), marked "…", and so on. Clauses go whole
    before words do."""
    out = [summary]
    while True:
        current = out[-1]
        shorter = re.sub(r"\s*\([^()]*\)$", "", current).strip()
        if shorter == current:
            head = current.removesuffix("…").rpartition(",")[0].strip()
            shorter = head + "…" if head else ""  # a cut clause is marked, as a cut word is
        if not shorter:
            return out
        out.append(shorter)


# With a link on the page, the summary may be cut word by word only down to this many characters
# (or its first clause, if shorter): below that the numbers are gone, and the numbers matter more
# than the link, so the link goes instead.
MIN_SUMMARY_WITH_LINK = 30


def _units(text: str) -> int:
    """Length as a phone counts it (UTF-16 code units: an emoji is two)."""
    return len(text.encode("utf-16-le")) // 2


def render_page(page: Page, lang: str, max_segments: int = MAX_SEGMENTS) -> str:
    """The page in `lang`, at most `max_segments` SMS.

    Shortening order: the summary's trailing parenthesis, its trailing comma clauses, then the
    summary word by word down to MIN_SUMMARY_WITH_LINK characters, then the link (and the summary
    word by word again). Raises ValueError only if even
    "<severity> <brand> / <code> / Reply ACK <code>" does not fit.
    """
    lang = lang if lang in SUPPORTED else "en"
    summary = summary_in(page.summary, lang).replace("\n", " ").strip() or "-"
    variants = _variants(summary)
    for with_link in (True, False) if page.link else (False,):
        for variant in variants:
            text = "\n".join(_lines(page, lang, variant, with_link))
            if segments(gsm_friendly(text)).segments <= max_segments:
                return fit(text, max_segments, trim=variant)
        shortest = variants[-1]
        try:
            text = fit("\n".join(_lines(page, lang, shortest, with_link)), max_segments, trim=shortest)
        except ValueError:
            continue
        kept = _units(text.split("\n")[1]) if text.count("\n") >= 3 else 0
        if not with_link or kept >= min(_units(shortest), MIN_SUMMARY_WITH_LINK):
            return text
    return fit("\n".join(_lines(page, lang, "", False)), max_segments, trim=page.brand)


def page_text(
    *,
    severity: str,
    brand: str,
    summary: str,
    code: str,
    languages: list[str],
    public_url: str | None,
    token: str | None = None,
) -> str:
    """The page for one recipient (their first of he/en), with their signed link when a public URL is set."""
    link = short_link(public_url, code, token)
    page = Page(severity=severity, brand=brand, summary=summary, code=code, link=link)
    return render_page(page, language_for(languages))


# --- replies to inbound SMS -------------------------------------------------------------------

REPLIES: dict[str, dict[str, str]] = {
    "acknowledged": {
        "en": "Thanks, {name}. Incident {code} is acknowledged; escalation stopped.",
        "he": "תודה, {name}. אירוע {code} אושר והסלמה הופסקה.",
    },
    "already_acknowledged": {
        "en": "Incident {code} was already acknowledged by {by}.",
        "he": "אירוע {code} כבר אושר על ידי {by}.",
    },
    "resolved": {
        "en": "Incident {code} is resolved. Thanks, {name}.",
        "he": "אירוע {code} נסגר. תודה, {name}.",
    },
    "already_resolved": {
        "en": "Incident {code} is already resolved.",
        "he": "אירוע {code} כבר נסגר.",
    },
    "unknown_code": {
        "en": "No open incident has code {code}. Check the code in the page.",
        "he": "אין אירוע פתוח עם הקוד {code}. בדקו את הקוד בהודעה.",
    },
    "not_allowed": {
        "en": "Incident {code} cannot be changed that way now ({status}).",
        "he": "לא ניתן לעדכן כך את אירוע {code} כרגע ({status}).",
    },
    "help": {
        "en": "Reply ACK <code> to acknowledge or RESOLVE <code> to resolve.",
        "he": "השיבו ACK <קוד> או אישור <קוד> לאישור, או RESOLVE <קוד> לסגירה.",
    },
}


STATUS_NAMES: dict[str, dict[str, str]] = {
    "he": {
        "triggered": "ממתין לאישור",
        "acknowledged": "אושר",
        "statement_approved": "הודעה אושרה",
        "published": "פורסם",
        "resolved": "נסגר",
    },
}
"""Incident statuses as a reply names them; English uses the status itself."""


def reply_text(kind: str, lang: str, **values: str) -> str:
    """One reply to an inbound SMS, in `lang` (English when the language has no text)."""
    texts = REPLIES[kind]
    if "status" in values:
        values = {**values, "status": STATUS_NAMES.get(lang, {}).get(values["status"], values["status"])}
    return texts.get(lang, texts["en"]).format(**values)
