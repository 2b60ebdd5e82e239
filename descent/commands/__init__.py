"""One module per ``descent`` subcommand; each defines ``register(subparsers)`` and ``run(args)``."""
