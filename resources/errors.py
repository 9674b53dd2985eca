"""Errors raised by source clients; messages name the tenant, API and page so an operator can act."""


class SourceApiError(RuntimeError):
    """A source API refused a request in a way retrying will not fix (bad credentials, bad cursor,
    no permission), or kept failing after every retry."""

    def __init__(self, message: str, *, status: int | None = None, code: str | int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
