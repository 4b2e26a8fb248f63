"""Synthetic people for the benchmarks: Faker name pools (Latin, Chinese, Thai) and queries taken
from the loaded records, so each query finds something."""

from __future__ import annotations

import random
from typing import Any

LOCALES = ("en_US", "zh_CN", "zh_TW", "th_TH")


def _pools(rng: random.Random, size: int) -> dict[str, dict[str, list[str]]]:
    from faker import Faker

    pools = {}
    for loc in LOCALES:
        fake = Faker(loc)
        fake.seed_instance(rng.randint(0, 10**6))
        pools[loc] = {
            "first": list({fake.first_name() for _ in range(size)}),
            "last": list({fake.last_name() for _ in range(size)}),
            "company": list({fake.company() for _ in range(size)}),
        }
    latin = Faker("en_US")
    latin.seed_instance(1)
    pools["latin_user"] = {"user": list({latin.user_name() for _ in range(size)})}
    return pools


def _required_columns(cur: Any, schema: str, table: str, given: set[str]) -> dict[str, Any]:
    """NOT NULL columns without a server default that the generator leaves out, with a neutral value."""
    cur.execute(
        "select column_name, data_type from information_schema.columns where table_schema = %s "
        "and table_name = %s and is_nullable = 'NO' and column_default is null and is_identity = 'NO'",
        (schema, table),
    )
    neutral = {"boolean": False, "jsonb": "{}", "ARRAY": "{}", "timestamp with time zone": "now"}
    return {name: neutral.get(kind, "") for name, kind in cur.fetchall() if name not in given}


def queries(sample: list[tuple], rng: random.Random, n: int) -> dict[str, list[str]]:
    """Queries by category, taken from loaded records so each one finds something."""
    by_loc: dict[str, list[tuple]] = {}
    for s in sample:
        by_loc.setdefault(s[0], []).append(s)
    zh = by_loc["zh_CN"] + by_loc["zh_TW"]
    th, en = by_loc["th_TH"], by_loc["en_US"]

    def part(text: str, size: int) -> str:
        start = rng.randint(0, max(len(text) - size, 0))
        return text[start : start + size]

    pick = rng.choice
    return {
        "Chinese, one character": [pick(zh)[1][-1] for _ in range(n)],
        "Chinese, given name": [pick(zh)[1] for _ in range(n)],
        "Chinese, full name": [pick(zh)[3] for _ in range(n)],
        "Thai, part of a name": [part(pick(th)[1], 3) for _ in range(n)],
        "Latin, last name": [pick(en)[2] for _ in range(n)],
        "Latin, part of an email": [part(pick(en + zh)[4].split("@")[0], 6) for _ in range(n)],
        "Phone digits": [pick(sample)[5].split(" ", 1)[1].replace(" ", "") for _ in range(n)],
    }
