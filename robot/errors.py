"""Errors meant for users: each carries a one-line message, never a traceback."""


class CorrigoError(Exception):
    """Root of every error corrigo raises on purpose (the knowledge base's and the wire protocol's
    included); each is reported to a user as one line."""


class RobotError(CorrigoError):
    """A body could not do what was asked (not connected, lost link, ...)."""


class NotConnectedError(RobotError):
    pass


class ActionError(RobotError, ValueError):
    """An action dict that cannot be interpreted at all (missing keys, wrong shape)."""
