"""The package version, in a module of its own so that any layer can read it without importing the package's
``__init__`` (which registers the Pillow plugin)."""

#: A development version (PEP 440): what is on main after 0.1 and before the next release, which writes format
#: version 2 and no longer reads 0.1's files (CHANGELOG, docs/FORMAT.md §11).
__version__ = "0.2.0.dev0"
