"""The one place the version is written: pyproject.toml reads it (setuptools ``attr:``), and so do
``claude-budget --version``, the hook log, ``doctor`` and the plugin manifest's test."""

__version__ = "0.6.0"
