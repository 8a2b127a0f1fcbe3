"""Which brands a mention is about, from a YAML file of handles and keywords.

Matching is case-insensitive and Hebrew-aware: final letters (ם ן ץ ף ך) match their
regular forms, niqqud is ignored, and a keyword may carry one of the attached one-letter
prefixes Hebrew writes without a space (ו ה ב ל מ ש כ: "לאקמי" mentions "אקמי").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.ingest.models import BrandId

_FINALS = str.maketrans({"ם": "מ", "ן": "נ", "ץ": "צ", "ף": "פ", "ך": "כ"})
_HEBREW_PREFIXES = "ובהלמשכ"
_WORD = r"\w"  # letters and digits, Hebrew included; maqaf and gershayim are punctuation
_HANDLE = re.compile(r"(?<![\w@])@(\w{1,50})")


class BrandConfigError(ValueError):
    """The brands file is invalid; the message names the file and the entry."""


class Brand(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: BrandId
    name: str = Field(min_length=1, max_length=128)
    handles: dict[str, list[str]] = Field(default_factory=dict)
    keywords: list[str] = Field(default_factory=list)


class BrandsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    brands: list[Brand]


def normalise(text: str) -> str:
    """Case-fold, drop niqqud and other combining marks, unify Hebrew final letters."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.translate(_FINALS)


def _keyword_pattern(keyword: str) -> str:
    norm = re.escape(normalise(keyword.strip()))
    hebrew_start = bool(keyword.strip()) and "\u0590" <= keyword.strip()[0] <= "\u05ff"
    prefix = f"[{_HEBREW_PREFIXES}]{{0,3}}" if hebrew_start else ""  # e.g. ו+כש+: "וכשאקמי"
    return rf"(?<!{_WORD}){prefix}{norm}(?!{_WORD})"


@dataclass(frozen=True)
class BrandMatcher:
    """Compiled matcher; build once per container with `load_brands`."""

    brands: tuple[Brand, ...]
    _keyword_res: tuple[tuple[str, re.Pattern[str] | None], ...]
    _handles: dict[tuple[str, str], tuple[str, ...]]

    @classmethod
    def from_brands(cls, brands: Iterable[Brand]) -> BrandMatcher:
        brands = tuple(brands)
        keyword_res = []
        handles: dict[tuple[str, str], list[str]] = {}
        for brand in brands:
            words = [k for k in brand.keywords if k.strip()]
            pattern = re.compile("|".join(_keyword_pattern(k) for k in words)) if words else None
            keyword_res.append((brand.id, pattern))
            for platform, names in brand.handles.items():
                for name in names:
                    handles.setdefault((platform, name.lstrip("@").casefold()), []).append(brand.id)
        return cls(brands, tuple(keyword_res), {k: tuple(v) for k, v in handles.items()})

    def match(self, *, platform: str, text: str, accounts: Iterable[str] = ()) -> tuple[str, ...]:
        """Brand ids for a mention: by the platform accounts it addresses, then by keywords."""
        found: list[str] = []
        for account in accounts:
            for brand_id in self._handles.get((platform, account.lstrip("@").casefold()), ()):
                if brand_id not in found:
                    found.append(brand_id)
        norm = normalise(text)
        for handle in _HANDLE.findall(norm):
            for brand_id in self._handles.get((platform, handle), ()):
                if brand_id not in found:
                    found.append(brand_id)
        for brand_id, pattern in self._keyword_res:
            if brand_id not in found and pattern is not None and pattern.search(norm):
                found.append(brand_id)
        return tuple(found)


def parse_brands(text: str, source: str) -> BrandMatcher:
    """Validate a brands YAML document; errors name the file and the offending entry."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise BrandConfigError(f"{source}{where}: not valid YAML: {exc}") from exc
    try:
        parsed = BrandsFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise BrandConfigError(f"{source}: {loc}: {first['msg']}") from exc
    ids = [b.id for b in parsed.brands]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise BrandConfigError(f"{source}: brand id {dupes[0]!r} is defined twice")
    return BrandMatcher.from_brands(parsed.brands)


@lru_cache(maxsize=4)
def load_brands(path: Path) -> BrandMatcher:
    """Read and compile the brands file once per container."""
    return parse_brands(path.read_text(encoding="utf-8"), str(path))
