"""Synthetic users, items and interactions for the ranking models.

The users and items tables are written as the feature store's seed data
(``models/ranking/features/{users,items}.csv``) and read back from those files, so the models
train on exactly the float32 values the service will fetch from the store. Interactions
(which user saw which item, and what happened) are only ever generated, never stored.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

USER_COUNT, ITEM_COUNT = 2000, 500
INTERACTION_COUNT = 60000
#: (column, printf format). The format is the precision the store holds, and therefore the
#: precision the models are trained on.
USER_COLUMNS = (("user_age", "%.0f"), ("user_tenure_days", "%.0f"), ("user_sessions_per_week", "%.1f"),
                ("user_avg_basket", "%.2f"), ("user_taste_x", "%.3f"), ("user_taste_y", "%.3f"))
ITEM_COLUMNS = (("item_price", "%.2f"), ("item_rating", "%.1f"), ("item_ctr_7d", "%.4f"),
                ("item_length_min", "%.1f"), ("item_topic_x", "%.3f"), ("item_topic_y", "%.3f"))
COLUMNS = tuple(name for name, _ in USER_COLUMNS + ITEM_COLUMNS)


def _user_table(rng: np.random.Generator) -> np.ndarray:
    n = USER_COUNT
    angle, strength = rng.uniform(0, 2 * np.pi, n), rng.uniform(0.5, 1.5, n)
    return np.column_stack([
        np.clip(rng.normal(38, 12, n), 18, 80),
        np.minimum(rng.exponential(400, n), 3650),
        rng.lognormal(np.log(5), 0.6, n),
        rng.lognormal(np.log(40), 0.5, n),
        strength * np.cos(angle),
        strength * np.sin(angle),
    ])


def _item_table(rng: np.random.Generator) -> np.ndarray:
    n = ITEM_COUNT
    angle = rng.uniform(0, 2 * np.pi, n)
    return np.column_stack([
        rng.lognormal(np.log(25), 0.7, n),
        np.clip(rng.normal(3.8, 0.6, n), 1, 5),
        rng.beta(2, 30, n),
        rng.uniform(1, 30, n),
        np.cos(angle),
        np.sin(angle),
    ])


def _write_csv(path: Path, key: str, prefix: str, columns: tuple[tuple[str, str], ...], table: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    width = len(str(len(table)))
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow([key, *(name for name, _ in columns)])
        for i, row in enumerate(table, start=1):
            writer.writerow([f"{prefix}{i:0{max(4, width)}d}", *((fmt % v) for (_, fmt), v in zip(columns, row))])


def read_table(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """(keys, column names, float32 values) of a seed CSV, parsed like the store parses it."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    return [r[0] for r in body], header[1:], np.array([[np.float32(v) for v in r[1:]] for r in body], np.float32)


def write_tables(features_dir: Path, seed: int) -> None:
    """Generate and write users.csv and items.csv."""
    rng = np.random.default_rng(seed)
    _write_csv(features_dir / "users.csv", "user_id", "u", USER_COLUMNS, _user_table(rng))
    _write_csv(features_dir / "items.csv", "item_id", "i", ITEM_COLUMNS, _item_table(rng))


@dataclass
class Interactions:
    """Generated (user, item) pairs and their outcomes.

    ``features`` is the model input, float32 [N, 12]: the user's columns then the item's.
    ``click`` is 0/1, ``dwell`` seconds on the item, ``revenue`` currency units.
    """

    user_keys: list[str]
    item_keys: list[str]
    features: np.ndarray
    click: np.ndarray
    dwell: np.ndarray
    revenue: np.ndarray

    def subset(self, index: np.ndarray) -> "Interactions":
        return Interactions([self.user_keys[i] for i in index], [self.item_keys[i] for i in index],
                            self.features[index], self.click[index], self.dwell[index], self.revenue[index])

    def __len__(self) -> int:
        return len(self.click)


def column(features: np.ndarray, name: str) -> np.ndarray:
    """One named column of a feature matrix, in float64 for the outcome formulas."""
    return features[:, COLUMNS.index(name)].astype(np.float64)


def click_logit(f: np.ndarray) -> np.ndarray:
    """True click log-odds: taste/topic match, item quality and popularity, user activity."""
    match = column(f, "user_taste_x") * column(f, "item_topic_x") + column(f, "user_taste_y") * column(f, "item_topic_y")
    return (-1.2 + 1.8 * match + 0.9 * (column(f, "item_rating") - 3.8) + 12.0 * (column(f, "item_ctr_7d") - 0.06)
            + 0.4 * np.log(column(f, "user_sessions_per_week") / 5.0))


def generate_interactions(features_dir: Path, seed: int) -> Interactions:
    """Sample user/item pairs, look their features up in the seed CSVs and draw outcomes.

    Dwell: a base reading time that grows with the item's length and the user's age, plus a
    bonus when the user clicked (which is larger for well-matched items), plus noise.
    Revenue: price times the user's basket size and loyalty, 60% more after a click, with
    multiplicative noise; it lives on a scale of tens to hundreds of currency units.
    """
    user_keys, _, users = read_table(features_dir / "users.csv")
    item_keys, _, items = read_table(features_dir / "items.csv")
    rng = np.random.default_rng(seed)
    u = rng.integers(0, len(users), INTERACTION_COUNT)
    i = rng.integers(0, len(items), INTERACTION_COUNT)
    f = np.concatenate([users[u], items[i]], axis=1)
    logit = click_logit(f)
    click = (rng.uniform(size=len(f)) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    length, age = column(f, "item_length_min"), column(f, "user_age")
    dwell = ((8 + 3.5 * length) * (0.75 + 0.012 * (age - 18))
             + click * (25 + 2.5 * length * (1 + 0.5 * np.tanh(logit)))
             + rng.normal(0, 8, len(f)))
    revenue = (column(f, "item_price") * (0.5 + column(f, "user_avg_basket") / 50)
               * (1 + 0.3 * np.tanh(column(f, "user_tenure_days") / 365)) * (1 + 0.6 * click)
               * rng.lognormal(0, 0.25, len(f)))
    return Interactions([user_keys[k] for k in u], [item_keys[k] for k in i], f, click.astype(np.float32),
                        np.maximum(dwell, 1.0).astype(np.float32), revenue.astype(np.float32))
