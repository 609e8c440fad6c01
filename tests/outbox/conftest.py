from tests.support.fixtures import postgres_url, storage

__all__ = ["postgres_url", "storage"]
