"""Command-line interface: one module per subcommand, each a typed dataclass with ``run()``."""
