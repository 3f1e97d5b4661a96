"""The learning rules, one module each: the paper's (BP, DFA, DRTP), our control (SHALLOW) and
our extensions (FA, SDFA). Importing this package registers every module's rule in
:data:`bnnlib.trainers.TRAINERS`; a new rule is a new module here (see ``fa.py``)."""

from importlib import import_module
from pkgutil import iter_modules

for _module in iter_modules(__path__):
    import_module(f"{__name__}.{_module.name}")
