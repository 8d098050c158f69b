"""Every error misen raises on purpose: each says what went wrong and where, in one message."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "MisenError",
    "MissingIdError",
    "NotCachedError",
    "PluginNotFoundError",
    "ResourceError",
    "ResultCorruptedError",
    "TaskFailedError",
    "TaskLockedError",
    "UnhashableArgumentError",
]


class MisenError(Exception):
    """Base class of misen's own errors; the CLI prints these as one line, without a traceback."""


class UnhashableArgumentError(MisenError, TypeError):
    """A task argument has a type misen cannot hash into a task's identity."""


class MissingIdError(MisenError):
    """A task function has no ``@meta(id=...)``; ``misen fill`` adds one."""


class ConfigError(MisenError):
    """A configuration file or value is wrong; the message names the file, the section and the key."""


class PluginNotFoundError(MisenError):
    """No installed plugin provides the requested executor, workspace or serializer."""


class TaskLockedError(MisenError):
    """Another process holds the lock of a cacheable task with the same identity."""

    def __init__(self, message: str, holder: object = None) -> None:
        super().__init__(message)
        self.holder = holder


class NotCachedError(MisenError, LookupError):
    """A result was asked for that the workspace does not hold."""


class ResultCorruptedError(MisenError):
    """A stored result failed its integrity check; it is treated as not cached."""


class SerializerMissingError(ResultCorruptedError):
    """A stored result was written by a serializer that is not installed here: not damage (installing the plugin
    makes it readable again), but it cannot be loaded, so it counts as not cached."""


class DamagedResultError(ResultCorruptedError, NotCachedError):
    """A task's stored result is damaged: it was dropped, so it counts as not cached (the next run computes it
    again); the message names the damage."""


class TaskFailedError(MisenError):
    """A task raised, was killed, or timed out."""


class ResourceError(MisenError):
    """A task asks for more resources than the executor can give."""
