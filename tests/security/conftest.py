"""The key-service fixtures (an in-process key service on SQLite and on a fresh PostgreSQL
schema, a development IdP, SDK clients) for the attacks that go through it alone."""

from tests.keyservice.conftest import database_url, env, idp, make_env

__all__ = ["database_url", "env", "idp", "make_env"]
