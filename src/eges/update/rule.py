"""The day's rule of a daily update (``update.other_walks = -1``, ``update.alpha = -1``): pure numbers, no files.

Two logs pull an update's settings apart (docs/studies/warm-start.md): on Taobao the new day touches a fifth of the
items and three quarters of those are new, and the update needs walks focused on them and a higher learning rate;
on the generated sample the day touches most items and brings almost none new, and focusing or a higher rate only
disturbs rows that were right. The rule reads the day from the log rather than fixing one constant:

- **other walks**: the share of the run's items the new events touched. A day touching 18% of the items trains
  every walk from those and 18% of the others; a day touching everything trains every walk.
- **learning rate**: ``train.alpha`` (a fresh run's rate), raised linearly with the share of the touched items
  that are new (the parent never had them), to twice it when half or more are new: a day of old items keeps the
  fresh rate (the sample: 0.025, where 0.05 loses 4-7%), a day of new items gets twice it (Taobao: 0.05; its
  0.044 at a linear 1 + share scored 3.1% below the retrain, 0.05 within 1%).
- **the side-information value rows' and attention logits' rates**: ``train.alpha``, whatever the items' rate
  (``train.side_alpha``, ``train.attention_alpha``): the value rows are shared by old and new items and place the
  cold items, and the logits at the doubled rate moved the vectors of items the day did not touch away from the
  cold items (Taobao's cold AUC: 0.667 with the value rows alone at ``train.alpha``, about the retrain's with the
  logits too).

With ``update.epochs = -1`` (a third of a fresh run's walk tokens) the passes follow from the tokens the focused
walks keep, so the rule fixes the cost at a third of a retrain's tokens at most. The default since 2026-12-03 (it
was 1 and 0.025): on every log measured it scores at least as well as those, and its cold AUC is near a retrain's
(docs/studies/warm-start.md, 2026-12-03 late evening).
"""

from __future__ import annotations

from dataclasses import dataclass

#: The value of update.other_walks / update.alpha that asks for the rule.
BY_RULE = -1.0


@dataclass(frozen=True)
class Day:
    """What the rule reads of an update's log: its items, those the new events touched, and the touched ones the
    parent never had. ``touched`` is None when the log has no event times (an edge list): nothing to focus on."""

    items: int
    touched: int | None
    new: int

    @property
    def touched_share(self) -> float:
        """The share of items the new events touched; 1 when none is seen to be touched (no event times, or no
        event after the parent's: a rerun of old events), since focusing on nothing would train nothing."""
        return 1.0 if not self.touched or self.items <= 0 else self.touched / self.items

    @property
    def new_share(self) -> float:
        return 0.0 if not self.touched else min(self.new, self.touched) / self.touched


def other_walks_by_rule(day: Day) -> float:
    """The share of the other walks an update keeps: the share of its items the day touched (1: every walk)."""
    return float(min(1.0, max(0.0, day.touched_share)))


#: The share of new items among the touched ones from which an update learns at twice a fresh run's rate.
NEW_FOR_DOUBLE = 0.5


def alpha_by_rule(fresh_alpha: float, day: Day) -> float:
    """An update's learning rate: the fresh run's rate, raised linearly with the share of the touched items that
    are new, to twice it from :data:`NEW_FOR_DOUBLE` on."""
    return float(fresh_alpha) * (1.0 + min(1.0, day.new_share / NEW_FOR_DOUBLE))


def side_alpha_by_rule(side_alpha: float, fresh_alpha: float, alpha_by_rule: bool) -> float:
    """The initial learning rate of an update's side-information value rows (``train.side_alpha``): an explicit
    value (>= 0) wins; left at -1 it is ``train.alpha`` when the update's rate is the rule's, else -1 (the item
    rows' rate). The rule raises the rate so new items' own rows learn fast, but the value rows are shared by old
    and new items and place the cold items. On Taobao this lifts the rule's cold AUC by 0.003-0.006 only
    (docs/studies/warm-start.md, 2026-12-03 evening)."""
    if side_alpha >= 0:
        return float(side_alpha)
    return float(fresh_alpha) if alpha_by_rule else -1.0


def attention_alpha_by_rule(attention_alpha: float, fresh_alpha: float, alpha_by_rule: bool) -> float:
    """The initial learning rate of an update's attention logits (EGES, ``train.attention_alpha``), by the value
    rows' rule: an explicit value wins; -1 is ``train.alpha`` when the update's rate is the rule's, else -1 (the item
    rows' rate). At the rule's doubled rate the logits of items the day did not touch moved their vectors away from
    the cold items; at ``train.alpha`` Taobao's cold AUC came back near a retrain's at no cost in HitRate@50
    (docs/studies/warm-start.md, 2026-12-03 late evening)."""
    return side_alpha_by_rule(attention_alpha, fresh_alpha, alpha_by_rule)


def resolve(other_walks: float, alpha: float, fresh_alpha: float, day: Day) -> tuple[float, float]:
    """(other walks, learning rate) of an update: an explicit value (>= 0) wins, -1 takes the rule's."""
    share = other_walks_by_rule(day) if other_walks < 0 else float(other_walks)
    rate = alpha_by_rule(fresh_alpha, day) if alpha < 0 else float(alpha)
    return share, rate
