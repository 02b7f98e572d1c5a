"""The store: the one door to the database. The store actor is its only writer while a system runs
(``writer``); everyone else reads through ``reader.StoreReader``; every connection is opened by
``connection.connect``."""
