"""Sub-commands of the ``cropaudit`` CLI; each module exposes ``register(subparsers)``."""
