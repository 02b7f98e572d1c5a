"""The public strategy API: ``from actors.strategy import Strategy``.

A strategy is a class with ``params`` (the defaults, readable as attributes, set by ``--param`` and
the strategies file), ``indicators`` (indicator specs formatted with the params, e.g. ``"sma:{slow}"``)
and one of two ways to decide:

- ``next(bar, ind, position)``, called at each bar's close with the bar, the indicator values of
  that bar by column name (``ind["sma_200"]``, NaN during warm-up) and the signed quantity the
  account holds (0 when flat). It returns ``None``, ``"buy"``, ``"sell"`` or an order made with
  :meth:`Strategy.buy` / :meth:`Strategy.sell` (size, limit or stop entry, stop-loss, take-profit,
  trailing stop);
- ``evaluate(frame)``, vectorised: buy and sell candidates for every bar of a frame at once, plus
  ``reason``. The account then takes a buy candidate while flat and a sell candidate while long.
  The built-in strategies use this form: Python runs once per decision, not once per bar.

Either way the decision is taken with the position the executor's account holds at that bar's
close, and fills at the next bar's open (or later, at a limit or stop). ``next`` runs where the
account is, in time order: a strategy's attributes may carry state from one bar to the next.
"""

from __future__ import annotations

import copy
import math
import os
import sys
import traceback
from pathlib import Path
from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple

import numpy as np

from actors.strategy.base import Evaluation
from messages.market import BarFrame
from messages.trading import BUY, SELL, Candidates, Signal
from supervisors.errors import StrategyFault

__all__ = ["Bar", "Order", "PerBar", "Strategy", "StrategyFault"]

ParamValue = int | float | bool
NAN = math.nan
_PROJECT = str(Path(__file__).resolve().parents[2]) + os.sep


class Bar(NamedTuple):
    """One closed bar as ``next`` sees it."""

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    symbol: str
    timeframe: str


class Order(NamedTuple):
    """An order a strategy asks for (made by :meth:`Strategy.buy` and :meth:`Strategy.sell`)."""

    side: str
    kind: str = "market"        # market | limit | stop
    limit: float = NAN
    stop: float = NAN
    sizing: str = ""            # "" (settings' allocation) | equity | qty | risk
    size: float = NAN
    stop_loss: float = NAN
    take_profit: float = NAN
    trail: float = NAN          # trailing stop distance, a fraction of the price (0.05 = 5%)
    reason: str = ""


class Strategy:
    """Base of every strategy; subclass it and set ``params``, ``indicators`` and ``next`` (or ``evaluate``)."""

    name: ClassVar[str] = ""                       # defaults to the class name
    params: ClassVar[Mapping[str, ParamValue]] = {}
    indicators: ClassVar[tuple[str, ...]] = ()
    uses_model: ClassVar[bool] = False             # whether ``frame.prediction`` / ``ind["prob_up"]`` is read

    def __init__(self, *args: ParamValue, **values: ParamValue) -> None:
        if len(args) > len(self.params):
            raise ValueError(f"{len(args)} parameters given, {len(self.params)} known")
        values = {**dict(zip(self.params, args)), **values}  # positional ones in the order of ``params``
        unknown = [key for key in values if key not in self.params]
        if unknown:
            raise ValueError(f"no parameter {unknown[0]!r}")
        chosen = {**self.params, **values}
        for key, value in chosen.items():
            setattr(self, key, value)
        self.param_values: tuple[tuple[str, ParamValue], ...] = tuple(chosen.items())
        self.check()

    @classmethod
    def strategy_name(cls) -> str:
        """The name in signals, client order ids and reports."""
        return cls.name or cls.__name__

    def check(self) -> None:
        """Raise ValueError for a bad combination of parameters (override)."""

    # -- what it reads ----------------------------------------------------------------------------

    def required_features(self) -> tuple[str, ...]:
        """The indicator specs, formatted with the parameters."""
        values = dict(self.param_values)
        return tuple(spec.format(**values) for spec in self.indicators)

    def needs_prediction(self) -> bool:
        """Whether this strategy reads the model's probability."""
        return self.uses_model

    # -- orders -------------------------------------------------------------------------------------

    @staticmethod
    def buy(size: float | None = None, *, qty: float | None = None, risk: float | None = None,
            limit: float | None = None, stop: float | None = None, stop_loss: float | None = None,
            take_profit: float | None = None, trail: float | None = None, reason: str = "") -> Order:
        """A buy: ``size`` a fraction of equity, or ``qty`` units, or ``risk`` a fraction of equity
        lost if ``stop_loss`` is hit; a ``limit`` or ``stop`` entry price; protective orders attached
        to the position (``stop_loss``, ``take_profit`` prices, ``trail`` a fraction)."""
        return _order(BUY, size, qty, risk, limit, stop, stop_loss, take_profit, trail, reason)

    @staticmethod
    def sell(size: float | None = None, *, qty: float | None = None, risk: float | None = None,
             limit: float | None = None, stop: float | None = None, stop_loss: float | None = None,
             take_profit: float | None = None, trail: float | None = None, reason: str = "") -> Order:
        """A sell: closes a long; while flat (with ``executor.allow_short``) opens a short, sized and
        protected as :meth:`buy`."""
        return _order(SELL, size, qty, risk, limit, stop, stop_loss, take_profit, trail, reason)

    # -- the two forms ------------------------------------------------------------------------------

    def next(self, bar: Bar, ind: Mapping[str, float], position: float) -> Order | str | None:
        """Decide at ``bar``'s close (override this, or ``evaluate``)."""
        raise NotImplementedError

    def evaluate(self, frame: BarFrame) -> Evaluation:
        """Buy and sell candidates for every bar of ``frame``, and the columns that explain them."""
        raise NotImplementedError

    def reason(self, side: str, i: int, inputs: dict[str, np.ndarray]) -> str:
        """Why bar ``i`` is a ``side`` candidate (for ``evaluate`` strategies)."""
        return f"{self.strategy_name()} {side}"

    @classmethod
    def per_bar(cls) -> bool:
        """Whether the strategy decides bar by bar (``next``) rather than by frame (``evaluate``)."""
        return cls.evaluate is Strategy.evaluate

    def decider(self, frame: BarFrame) -> Candidates | PerBar:
        """What the executor asks at each bar's close: the candidates, or the bars for ``next``."""
        if self.per_bar():
            return PerBar(self, frame.symbol, frame.timeframe, frame.ts, frame.open, frame.high, frame.low,
                          frame.close, frame.volume, _columns(frame))
        buy, sell, inputs = self.evaluate(frame)
        explain = copy.copy(self).reason
        return Candidates(self.strategy_name(), self.param_values, frame.symbol, frame.timeframe, frame.ts,
                          frame.close, tuple(np.flatnonzero(buy).tolist()), tuple(np.flatnonzero(sell).tolist()),
                          tuple((key, np.asarray(values)) for key, values in inputs.items()), explain)


def _order(side: str, size: float | None, qty: float | None, risk: float | None, limit: float | None,
           stop: float | None, stop_loss: float | None, take_profit: float | None, trail: float | None,
           reason: str) -> Order:
    given = [(name, value) for name, value in (("equity", size), ("qty", qty), ("risk", risk)) if value is not None]
    if len(given) > 1:
        raise ValueError("give one of size, qty and risk")
    sizing, amount = given[0] if given else ("", NAN)
    if sizing == "risk" and stop_loss is None:
        raise ValueError("risk sizing needs a stop_loss")
    if amount == amount and not amount > 0:
        raise ValueError(f"{sizing} must be > 0, got {amount!r}")
    if limit is not None and stop is not None:
        raise ValueError("give a limit or a stop entry, not both")
    if trail is not None and not 0 < trail < 1:
        raise ValueError(f"trail is a fraction of the price in (0, 1), got {trail!r}")
    kind = "limit" if limit is not None else "stop" if stop is not None else "market"

    def price(value: float | None) -> float:
        return NAN if value is None else float(value)

    return Order(side, kind, price(limit), price(stop), sizing, float(amount), price(stop_loss), price(take_profit),
                 price(trail), reason)


def _columns(frame: BarFrame) -> tuple[tuple[str, np.ndarray], ...]:
    columns = frame.features
    if frame.prediction is not None:
        columns = (*columns, ("prob_up", np.asarray(frame.prediction, dtype=np.float64)))
    return columns


class PerBar:
    """A ``next`` strategy's frame: the bars and indicator columns, decided bar by bar.

    The executor binds it to the strategy's live instance (kept with the account, so that state
    carried between bars follows the account through checkpoints) and asks every bar.
    """

    __slots__ = ("columns", "frame", "prototype", "symbol", "timeframe")

    def __init__(self, prototype: Strategy, symbol: str, timeframe: str, ts: np.ndarray, open_: np.ndarray,
                 high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray,
                 columns: tuple[tuple[str, np.ndarray], ...]) -> None:
        self.prototype, self.symbol, self.timeframe = prototype, symbol, timeframe
        self.frame = (ts, open_, high, low, close, volume)
        self.columns = columns

    def slice(self, start: int, stop: int) -> PerBar:
        """The bars ``start:stop``."""
        ts, o, h, low, c, v = (column[start:stop] for column in self.frame)
        return PerBar(self.prototype, self.symbol, self.timeframe, ts, o, h, low, c, v,
                      tuple((key, values[start:stop]) for key, values in self.columns))

    def bind(self, instances: dict[tuple[str, str], Any]) -> BoundPerBar:
        """This frame with the strategy instance for its symbol and timeframe (made on first use)."""
        key = (self.symbol, self.timeframe)
        instance = instances.get(key)
        if instance is None:
            instance = instances[key] = copy.deepcopy(self.prototype)
        return BoundPerBar(self, instance)


class BoundPerBar:
    """A :class:`PerBar` frame with its instance: every bar is asked."""

    __slots__ = ("bars", "instance", "lists", "source")
    asks_while_open = True

    def __init__(self, source: PerBar, instance: Strategy) -> None:
        self.source, self.instance = source, instance
        self.lists: tuple[list, ...] | None = None

    def first(self, start: int, position: float) -> int:
        """Every bar is a decision."""
        return start

    def slice(self, start: int, stop: int) -> BoundPerBar:
        """The bars ``start:stop``, same instance."""
        return BoundPerBar(self.source.slice(start, stop), self.instance)

    def decide(self, i: int, position: float) -> Signal | None:
        """Call ``next`` for bar ``i``; StrategyFault if it raises or answers nonsense."""
        source, instance = self.source, self.instance
        if self.lists is None:
            self.lists = tuple(column.tolist() for column in source.frame)
        ts, o, h, low, c, v = (column[i] for column in self.lists)
        bar = Bar(ts, o, h, low, c, v, source.symbol, source.timeframe)
        ind = {key: float(values[i]) for key, values in source.columns}
        try:
            answer = instance.next(bar, ind, position)
            order = _as_order(answer)
        except Exception as exc:  # noqa: BLE001 - user code: any exception is the strategy's fault
            raise StrategyFault(describe_fault(type(instance), exc, bar)) from exc
        if order is None:
            return None
        return Signal(instance.strategy_name(), source.symbol, source.timeframe, ts, order.side, c,
                      order.reason or f"next() returned {order.side}", tuple(ind.items()), instance.param_values,
                      order.kind, order.limit, order.stop, order.sizing, order.size, order.stop_loss,
                      order.take_profit, order.trail)


def _as_order(answer: Any) -> Order | None:
    if answer is None:
        return None
    if isinstance(answer, Order):
        return answer
    if answer in (BUY, SELL):
        return Order(answer)
    raise TypeError(f"next() must return None, 'buy', 'sell' or an order from self.buy()/self.sell(), "
                    f"got {answer!r}")


def describe_fault(cls: type, exc: BaseException, bar: Bar) -> str:
    """One line: the strategy, the user's file and line, the exception and the bar."""
    source = getattr(sys.modules.get(cls.__module__), "__file__", None) or cls.__module__
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == source]
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else source
    when = np.datetime_as_string(np.datetime64(bar.ts, "ns"), unit="s")
    return (f"strategy {cls.strategy_name()} failed at {where}: {type(exc).__name__}: {exc} "
            f"(in next() at the {bar.symbol} {bar.timeframe} bar closing {when}Z)")


def user_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` cut to the frames in user code (outside this project)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_PROJECT)]
    return "".join(traceback.format_list(frames)) + "".join(traceback.format_exception_only(type(exc), exc))
