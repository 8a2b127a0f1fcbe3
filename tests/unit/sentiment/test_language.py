"""detect_language: script vote, mixed script, noise ignored."""

from __future__ import annotations

import pytest

from chalicelib.sentiment import detect_language

CASES = [
    ("the service was terrible today", "en"),
    ("השירות היה נוראי היום", "he"),
    ("الخدمة كانت سيئة اليوم", "ar"),
    ("сервис сегодня был ужасным", "ru"),
    ("サービスはひどかった", "other"),
    ("η εξυπηρέτηση ήταν απαίσια", "other"),
    ("le service était vraiment nul et je ne suis pas content", "other"),
    ("el servicio es muy malo y no me gusta para nada", "other"),
    ("сервіс був жахливий, їх підтримка", "other"),  # Ukrainian, not Russian
    ("این سرویس خیلی بد بود، پول", "other"),  # Persian, not Arabic
    # mixed script: Hebrew/Arabic/Russian mentions quote Latin brand names, and still count as their language
    ("קניתי iPhone חדש מ-Apple והוא נשבר", "he"),
    ("اشتريت iPhone من Apple", "ar"),
    ("купил iPhone в Apple Store", "ru"),
    ("just landed in תל אביב, the weather is great and the food is amazing", "en"),
    # noise
    ("@user https://t.co/abc #BoycottNike", "en"),
    ("@משתמש https://t.co/abcdefghijklmnop שירות גרוע", "he"),
    ("\u200fשירות גרוע\u200f", "he"),
    ("😡😡😡", "other"),
    ("", "other"),
    ("12345 !!!", "other"),
    ("\ud800", "other"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_detect_language(text: str, expected: str) -> None:
    assert detect_language(text) == expected


def test_long_text_is_fast_enough() -> None:
    assert detect_language("שירות גרוע " * 1000 + "bad") == "he"
