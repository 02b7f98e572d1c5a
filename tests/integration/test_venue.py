"""Trading on a venue, end to end: ``run.py live --venue binance`` as a subprocess against the loopback
Binance double (tests/doubles/binance_trading.py), driven through ccxt itself.

A strategy's order and a ``ctl submit`` reach the venue once (one of them into an HTTP 500) and their
fills come back to the executor's account; a resting order that fills while the process is killed
(``kill -9``) is found filled after a restart, the account is the venue's balances and nothing is placed
again; an order placed on the venue directly is adopted with an event; a wrong secret stops the start
with one line about authentication.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from actors.venue.session import venue_client_id
from messages.codec import unpackb
from tests.conftest import free_endpoint
from tests.doubles.binance_trading import TradingBinance
from tests.helpers import ROOT, ctl, run_cli, wait_for_control, wait_until

pytestmark = pytest.mark.timeout(90)

KEY, SECRET = "TESTKEY0123456789", "test-secret"
STRATEGIES = '''from actors.strategy import Strategy


class BuyOnce(Strategy):
    """Buy once, after a few bars, and hold."""

    params = {"after": 3}

    def next(self, bar, ind, position):
        self.seen = getattr(self, "seen", 0) + 1
        return "buy" if not position and self.seen >= self.after else None


class BracketOnce(Strategy):
    """Buy one unit once, with a stop-loss at 95 and a take-profit at 110."""

    def protection(self):
        return {"stop_loss": 95.0, "take_profit": 110.0}

    def next(self, bar, ind, position):
        self.done = getattr(self, "done", False)
        if position or self.done:
            return None
        self.done = True
        return self.buy(qty=1.0, **self.protection())


class TrailOnce(BracketOnce):
    """Buy one unit once, with a trailing stop 5% under the best price since."""

    def protection(self):
        return {"trail": 0.05}


class Never(Strategy):
    """Decide nothing (orders come from the control socket)."""

    def next(self, bar, ind, position):
        return None
'''
SETTINGS = """[venue]
poll_s = 0.1
reconcile_s = 0.3
retries = 2
backoff_s = 0.05
[executor]
allocation = 0.01
[control]
summary_s = 60.0
"""


@pytest.fixture
def venue() -> Iterator[TradingBinance]:
    """The double: one market, BTC/USDT at 100, 10,000 USDT."""
    with TradingBinance(symbols=("BTC/USDT",), keys={KEY: SECRET}, balances={"USDT": 10_000.0},
                        prices={"BTC/USDT": 100.0}) as double:
        yield double


class Live:
    """``run.py live --venue binance`` against the double, in the background."""

    def __init__(self, tmp_path: Path, venue: TradingBinance, strategy: str = "Never", secret: str = SECRET,
                 settings: str = SETTINGS, symbols: str = "BTC/USDT") -> None:
        (tmp_path / "strategies.py").write_text(STRATEGIES)
        (tmp_path / "settings.toml").write_text(settings)
        self.control, self.events = free_endpoint(), free_endpoint()
        self.args = ["live", "--feed", "sim", "--symbols", symbols, "--sim-speed", "3000",
                     "--db", str(tmp_path / "venue.db"), "--settings", str(tmp_path / "settings.toml"),
                     "--ingress", free_endpoint(), "--control", self.control, "--events", self.events,
                     "--strategy", f"{tmp_path / 'strategies.py'}:{strategy}",
                     "--venue", "binance", "--venue-url", venue.url]
        self.env = {**os.environ, "TRADING_VENUE_API_KEY": KEY, "TRADING_VENUE_SECRET": secret}
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> Live:
        self.process = subprocess.Popen([sys.executable, str(ROOT / "run.py"), *self.args], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, cwd=ROOT, env=self.env)
        wait_for_control(self.control, self.process, timeout=40)
        return self

    def run(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(ROOT / "run.py"), *self.args], capture_output=True, text=True,
                              timeout=60, cwd=ROOT, env=self.env)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            ctl(self.control, "shutdown")
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill9(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process.stdout.close()
        self.process.stderr.close()

    def held(self, symbol: str = "BTC/USDT") -> float:
        position = ctl(self.control, "positions")["positions"].get(symbol)
        return position["qty"] if position else 0.0

    def order(self, client_id: str) -> dict:
        states = [o for o in ctl(self.control, "orders")["orders"] if o["client_id"] == client_id]
        return states[-1] if states else {}  # its latest state


def _submit(live: Live, *args: str) -> str:
    done = run_cli("ctl", "submit", *args, "--control", live.control, "--json")
    assert done.returncode == 0, done.stderr
    import json
    return json.loads(done.stdout)["client_id"]


def _reconciled_twice(venue: TradingBinance) -> None:
    """Wait for two more balance reads (two reconciliations)."""
    seen = venue.count("/api/v3/account")
    wait_until(lambda: venue.count("/api/v3/account") >= seen + 2, 20, "two more reconciliations")


def test_a_strategy_signal_becomes_one_venue_order_and_its_fill_comes_back_to_the_position(
        tmp_path: Path, venue: TradingBinance) -> None:
    live = Live(tmp_path, venue, "BuyOnce").start()
    try:
        wait_until(lambda: venue.posts() >= 1, 40, "the strategy's order at the venue")
        qty = wait_until(lambda: live.held(), 20, "the fill in the executor's position")
        _reconciled_twice(venue)
        assert venue.posts() == 1
        assert len(venue.book) == 1
        order = next(iter(venue.book.values()))
        assert order.status == "FILLED" and order.client_id.startswith("at") and len(order.client_id) == 32
        assert qty == pytest.approx(venue.balance("BTC")) and qty == pytest.approx(order.qty)
        positions = ctl(live.control, "positions")
        assert positions["cash"] == pytest.approx(venue.balance("USDT"))
        ours = [o for o in ctl(live.control, "orders")["orders"] if o["status"] == "filled"]
        assert len(ours) == 1 and ours[0]["client_id"].startswith("BuyOnce:BTC/USDT:")
        assert ours[0]["venue"]["venue_client_id"] == order.client_id
        assert ours[0]["venue"]["fee"] == pytest.approx(order.quote * 0.001)
    finally:
        live.stop()


@pytest.mark.parametrize("processed", [False, True], ids=["500-before-placing", "500-after-placing"])
def test_ctl_submit_reaches_the_venue_once_even_sent_into_an_http_500(tmp_path: Path, venue: TradingBinance,
                                                                     processed: bool) -> None:
    live = Live(tmp_path, venue).start()
    try:
        venue.fail_order(500, processed=processed)
        client_id = _submit(live, "symbol=BTC/USDT", "side=buy", "qty=0.5", "type=market")
        assert client_id.startswith("manual:BTC/USDT:")
        wait_until(lambda: live.held() == pytest.approx(0.5), 20, "the fill in the position")
        _reconciled_twice(venue)
        assert len(venue.orders_with_client_id(venue_client_id(client_id))) == 1
        assert len(venue.book) == 1
        assert venue.posts() == (1 if processed else 2)  # looked up by client id before any second send
        assert live.order(client_id)["status"] == "filled"
        assert ctl(live.control, "positions")["cash"] == pytest.approx(venue.balance("USDT"))
        health = ctl(live.control, "health")
        assert health["status"] == "healthy", {k: health[k] for k in ("risk", "stale", "late", "overload", "venue")}
    finally:
        live.stop()


def test_kill_9_with_a_resting_order_that_fills_meanwhile_restart_takes_the_venues_account_and_sends_nothing(
        tmp_path: Path, venue: TradingBinance) -> None:
    live = Live(tmp_path, venue).start()
    client_id = _submit(live, "symbol=BTC/USDT", "side=buy", "qty=1", "type=limit", "price=90")
    wait_until(lambda: venue.orders_with_client_id(venue_client_id(client_id)), 20, "the order resting on the venue")
    wait_until(lambda: (live.order(client_id).get("venue") or {}).get("venue_status") == "open", 20,
               "the order seen open")
    live.kill9()
    posts = venue.posts()
    venue.set_price("BTC/USDT", 89.0)  # it fills while the process is down
    assert venue.balance("BTC") == pytest.approx(1.0)
    live = Live(tmp_path, venue).start()
    try:
        wait_until(lambda: live.order(client_id).get("status") == "filled", 20, "the order filled after the restart")
        positions = ctl(live.control, "positions")
        assert positions["positions"]["BTC/USDT"]["qty"] == pytest.approx(1.0)
        assert positions["cash"] == pytest.approx(venue.balance("USDT"))
        _reconciled_twice(venue)
        assert venue.posts() == posts  # nothing placed again
        assert live.held() == pytest.approx(1.0)  # the fill from before was not applied on top of the balances
        health = ctl(live.control, "health")
        assert health["status"] == "healthy", {k: health[k] for k in ("risk", "stale", "late", "overload", "venue")}
    finally:
        live.stop()


def test_an_order_placed_on_the_venue_directly_is_adopted_with_an_event(tmp_path: Path,
                                                                         venue: TradingBinance) -> None:
    live = Live(tmp_path, venue).start()
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"health.venue")
    sub.connect(live.events)
    try:
        _reconciled_twice(venue)  # the subscription is in place by now
        resting = venue.place("BTC/USDT", "BUY", 2.0, "LIMIT", 80.0, client_id="web_manual_1")
        venue.place("BTC/USDT", "BUY", 0.25, "MARKET", client_id="web_manual_2")
        wait_until(lambda: live.held() == pytest.approx(0.25), 20, "the outside fill in the position")
        adopted = f"outside:{resting['orderId']}"
        wait_until(lambda: live.order(adopted).get("status") == "accepted", 20, "the resting outside order adopted")
        assert sub.poll(10_000)
        events = []
        while sub.poll(1000):
            events.append(unpackb(sub.recv_multipart()[1]))
            if sum(e["change"] == "adopted" for e in events) >= 2:
                break
        assert sum(e["change"] == "adopted" for e in events) == 2
        assert venue.posts() == 0
        _reconciled_twice(venue)
        assert ctl(live.control, "positions")["cash"] == pytest.approx(venue.balance("USDT"))
        health = ctl(live.control, "health")
        assert health["status"] == "healthy", {k: health[k] for k in ("risk", "stale", "late", "overload", "venue")}
    finally:
        sub.close(0)
        live.stop()


def test_a_wrong_secret_exits_non_zero_with_one_line_about_authentication(tmp_path: Path,
                                                                          venue: TradingBinance) -> None:
    done = Live(tmp_path, venue, secret="not-the-secret").run()
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("run.py: error: ") and "authentication" in errors[0], done.stderr
    assert "Traceback" not in done.stderr
    assert "not-the-secret" not in done.stderr + done.stdout


def test_submit_cancel_and_flatten_work_on_paper_through_the_risk_checks(tmp_path: Path) -> None:
    control = free_endpoint()
    (tmp_path / "settings.toml").write_text("[executor]\nmax_position = 2.0\n")
    process = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "live", "--feed", "sim", "--symbols", "SOLUSD",
                                "--db", str(tmp_path / "paper.db"), "--settings", str(tmp_path / "settings.toml"),
                                "--ingress", free_endpoint(), "--control", control, "--events", free_endpoint()],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        wait_for_control(control, process)
        held = lambda: (ctl(control, "positions")["positions"].get("SOLUSD") or {}).get("qty", 0.0)  # noqa: E731
        bought = ctl(control, "submit", symbol="SOLUSD", side="buy", qty=1.5)
        assert bought["ok"] and bought["client_id"].startswith("manual:SOLUSD:")
        wait_until(lambda: held() == pytest.approx(1.5), 20, "the paper fill")
        refused = ctl(control, "submit", symbol="SOLUSD", side="buy", qty=1.0)
        assert not refused["ok"] and "max position 2 exceeded" in refused["error"]
        resting = ctl(control, "submit", symbol="SOLUSD", side="sell", qty=0.5, type="limit", price=1e6)
        assert ctl(control, "cancel", client_id=resting["client_id"]) == {
            "ok": True, "client_id": resting["client_id"], "cancelled": True}
        assert not ctl(control, "cancel", client_id=resting["client_id"])["ok"]
        assert not ctl(control, "submit", symbol="SOLUSD", side="buy", qty=-1)["ok"]
        assert ctl(control, "flatten")["ok"]
        wait_until(lambda: held() == 0.0, 20, "the position flattened")
    finally:
        if process.poll() is None:
            ctl(control, "shutdown")
            process.wait(timeout=30)


def test_a_bracket_rests_its_take_profit_on_the_venue_and_its_fill_cancels_the_stop_loss(
        tmp_path: Path, venue: TradingBinance) -> None:
    live = Live(tmp_path, venue, "BracketOnce").start()
    try:
        wait_until(lambda: live.held() == pytest.approx(1.0), 40, "the entry filled at the venue")
        # the take-profit rests on the venue as a limit sell; the stop-loss is watched here (emulated)
        resting = wait_until(lambda: [o for o in venue.book.values() if o.status == "NEW"], 20, "the take-profit")
        assert [(o.side, o.qty, o.price) for o in resting] == [("SELL", 1.0, 110.0)]
        assert venue.posts() == 2
        venue.set_price("BTC/USDT", 111.0)  # the limit fills at the venue
        wait_until(lambda: live.held() == 0.0, 20, "the take-profit's fill in the position")
        wait_until(lambda: {o["client_id"].rsplit(":", 1)[-1]: o for o in ctl(live.control, "orders")["orders"]}
                   ["sl"]["status"] == "cancelled", 20, "the stop-loss cancelled")
        orders = {o["client_id"].rsplit(":", 1)[-1]: o for o in ctl(live.control, "orders")["orders"]}
        assert orders["tp"]["status"] == "filled"
        assert orders["sl"]["reason"] == f"{orders['tp']['client_id']} filled (one cancels the others)"
        _reconciled_twice(venue)
        assert venue.posts() == 2 and venue.balance("BTC") == pytest.approx(0.0)  # the stop was never sent
    finally:
        live.stop()


def test_a_trailing_stop_follows_the_venues_price_up_and_sells_when_it_falls_back(
        tmp_path: Path, venue: TradingBinance) -> None:
    live = Live(tmp_path, venue, "TrailOnce").start()
    try:
        wait_until(lambda: live.held() == pytest.approx(1.0), 40, "the entry filled at the venue")
        assert venue.posts() == 1  # the trailing stop is held here, not on the venue
        venue.set_price("BTC/USDT", 120.0)  # the stop follows: 120 x 0.95 = 114
        _reconciled_twice(venue)
        venue.set_price("BTC/USDT", 116.0)  # above 114: still held
        _reconciled_twice(venue)
        assert venue.posts() == 1 and live.held() == pytest.approx(1.0)
        venue.set_price("BTC/USDT", 113.0)  # crossed: sent as a market order
        wait_until(lambda: live.held() == 0.0, 20, "the trailing stop's sale")
        assert venue.posts() == 2
        sale = [o for o in venue.book.values() if o.side == "SELL"]
        assert [(o.status, o.qty) for o in sale] == [("FILLED", 1.0)]
    finally:
        live.stop()
