class RowIdConverter:
    """A row id in a URL: 1 to 18 digits, so it always fits PostgreSQL's bigint.

    A longer number is a 404 at URL resolution instead of a database error.
    """

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(value)
