"""Container tests: a package, so its conftest never takes the name `conftest` from tests/."""
