"""Trading on a real venue through ccxt: the execution actor, its session, book and reconciliation."""
