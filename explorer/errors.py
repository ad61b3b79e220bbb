"""Exceptions raised for bad user input (the CLI turns them into a one-line message and exit code 2)."""


class ExplorerInputError(ValueError):
    """A request that cannot be served as given: unknown element, too many atoms, bad space group, NaN..."""
