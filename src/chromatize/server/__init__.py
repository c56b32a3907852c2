"""``chromatize serve``: colorize photos and fix their colours in the browser, offline.

One page and a small API, both served by :func:`create_app` (FastAPI); ``chromatize serve``
runs it with uvicorn. Needs the ``serve`` extra (fastapi, uvicorn, python-multipart).
"""

from chromatize.server.app import create_app

__all__ = ["create_app"]
