"""Drive cryptofeed's real ZeroMQ backends (TickerZMQ, TradeZMQ) from a separate process.

Usage: ``python cryptofeed_backend.py PORT TICKERS TRADES``. Until a line arrives on stdin it
sends probe tickers (PROBE-X, a symbol nobody watches) and probe trades (PROBE-Y, with an
impossible timestamp), so the caller can tell from the rejection reasons that both connections
are up. Then it sends TRADES Coinbase ETH-USD trades; after a second line, TICKERS Binance
BTC-USDT tickers, all one second apart from 2024-06-01T00:00:00Z. The two backends are separate
sockets with no order between them, so the caller waits for the trades before asking for the
tickers (which move the market clock past the trades' minute). It prints "sent" and exits when
stdin closes. Runs in its own process because cryptofeed switches the event loop policy (uvloop)
for whoever imports its handler.
"""

from __future__ import annotations

import asyncio
import sys
import time
from decimal import Decimal

from cryptofeed.backends.zmq import TickerZMQ, TradeZMQ
from cryptofeed.types import Ticker, Trade

T0 = 1717200000.0


async def main(port: int, tickers: int, trades: int) -> None:
    loop = asyncio.get_running_loop()
    ticker_cb = TickerZMQ(host="127.0.0.1", port=port)
    trade_cb = TradeZMQ(host="127.0.0.1", port=port)
    ticker_cb.start(loop, multiprocess=False)
    trade_cb.start(loop, multiprocess=False)
    go = loop.run_in_executor(None, sys.stdin.readline)
    while not go.done():  # probe both backends: each is its own PUB socket, connected on its own
        await ticker_cb(Ticker("BINANCE", "PROBE-X", Decimal("1"), Decimal("2"), time.time(), raw=None), time.time())
        await trade_cb(Trade("COINBASE", "PROBE-Y", "buy", Decimal("1"), Decimal("1"), -1.0, id="p", type=None,
                             raw=None), time.time())
        await asyncio.sleep(0.02)
    for i in range(trades):
        price = Decimal("3000.25") + Decimal(i % 5)
        await trade_cb(Trade("COINBASE", "ETH-USD", "buy", Decimal("0.5"), price, T0 + i, id=str(i), type=None,
                             raw=None), time.time())
    await loop.run_in_executor(None, sys.stdin.readline)
    for i in range(tickers):
        bid = Decimal("64000") + Decimal(i % 17)
        await ticker_cb(Ticker("BINANCE", "BTC-USDT", bid, bid + Decimal("0.5"), T0 + i, raw=None), time.time())
    for callback in (ticker_cb, trade_cb):
        await asyncio.wait_for(callback.queue.join(), 10)  # stop() drops what the writer has not taken yet
        await callback.stop()
        await asyncio.wait_for(callback.worker, 10)
    print("sent", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
