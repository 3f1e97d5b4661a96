"""The book's helpers: what the chapters call, apart from the library they report on.

* :mod:`~bnnlib.book.report` — stores and budgets per page, tables, figures, statistics;
* :mod:`~bnnlib.book.claims` — the paper's three claims decided by tests;
* :mod:`~bnnlib.book.mechanism` — the mechanism chapter's probed runs, verdicts and sentences;
* :mod:`~bnnlib.book.diagrams` — the Methods diagrams;
* :mod:`~bnnlib.book.paper` — the paper's published numbers (``paper_results.md``);
* :mod:`~bnnlib.book.pipeline` — executing the chapters with papermill, shaping pages for readers.

Nothing in the library (``bnnlib.*`` outside this package) imports from here but the CLI's
``book`` and ``protocol --mechanism`` commands.
"""
