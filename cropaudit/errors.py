"""Error types shared across cropaudit."""


class UserError(Exception):
    """A problem the user can fix (bad config, manifest or path): the CLI prints it, exit 2."""


class ConfigError(UserError):
    """An invalid experiment config; the message names the offending key."""


class ManifestError(UserError):
    """A manifest that cannot be used at all (missing columns, unreadable file, empty group)."""


class JobFailed(UserError):
    """A pipeline the engine (a Flink cluster, a job service) ran and reported as failed; the
    message carries the engine's error in one line. Nothing of the run is published."""


class NotAFileError(UserError):
    """A local path that is not a regular file (FIFO, device, socket, folder): never opened for
    reading, since reading it could block forever or never end."""


class TooLargeError(UserError):
    """A file larger than the byte limit its reader allows: never read past that limit."""
