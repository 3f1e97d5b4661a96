"""The book's helpers: what the chapters call, apart from the library they report on.

A tree of small modules, each importing only from those listed before it (a test holds it: no
import cycle, no module over 400 lines):

* the base — :mod:`~bnnlib.book.labels` (the vocabulary: names of datasets, settings, BN and
  rules, their order and colours), :mod:`~bnnlib.book.render` (figure style, saved figures,
  tables, number formats), :mod:`~bnnlib.book.stats`, :mod:`~bnnlib.book.toc` (the chapters
  and results pages), :mod:`~bnnlib.book.paper` (the paper's published numbers),
  :mod:`~bnnlib.book.records` (the one owner of "which budget does this page show", and the
  runs recorded at it), :mod:`~bnnlib.book.pages` (what every page does first, and the page object it returns), and
  :mod:`~bnnlib.book.claims` (the paper's three claims decided by tests),
  :mod:`~bnnlib.book.probes` (the mechanism study's probed runs and verdicts);
* one module per chapter, which its notebook imports: :mod:`~bnnlib.book.methods` (02, with
  :mod:`~bnnlib.book.diagrams`), :mod:`~bnnlib.book.grid_search` (03),
  :mod:`~bnnlib.book.results` (04, the results index and pages), :mod:`~bnnlib.book.learning_curves`
  (05), :mod:`~bnnlib.book.bn_effect` (06), :mod:`~bnnlib.book.deployment` (06b),
  :mod:`~bnnlib.book.mechanism` (06c), :mod:`~bnnlib.book.conclusions` (07),
  :mod:`~bnnlib.book.reproducing` (08);
* :mod:`~bnnlib.book.pipeline` — executing the chapters with papermill, shaping pages for readers.

Nothing in the library (``bnnlib.*`` outside this package) imports from here but the CLI's
``book`` command (the probed runs themselves are the protocol's: ``protocol --mechanism``).
"""
