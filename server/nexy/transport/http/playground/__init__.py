"""The web playground: a page on the HTTP port that runs turns through the gRPC handlers.

``site.py`` holds what the playground needs and who may use it, ``turn_socket.py`` the
WebSocket turn endpoint, ``routes.py`` the page, its static files and the memory view.
"""

from nexy.transport.http.playground.routes import playground_routes
from nexy.transport.http.playground.site import Playground, playground_enabled

__all__ = ["Playground", "playground_enabled", "playground_routes"]
