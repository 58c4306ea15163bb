"""Sub-commands of the ``cropaudit`` CLI; each module declares its ``COMMAND`` as data."""
