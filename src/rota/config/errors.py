"""One error type for every configuration problem; its text is the one line a user sees."""


class ConfigError(Exception):
    """A configuration problem: `SOURCE: FIELD: PROBLEM`. The CLI prints it and exits 2."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        self.source = source
        self.field = field
        self.problem = problem
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {problem}")
