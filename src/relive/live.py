"""Placeholder while the engine is being written (replaced in the next commit)."""
from typing import Any
class Watcher: ...
def watch(*paths: Any, **options: Any) -> Any: raise NotImplementedError
