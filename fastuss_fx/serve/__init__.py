"""``fastuss serve``: a local web app to separate a file and audition its stems in a browser mixer.

``app`` holds the HTTP server, ``guard`` its Host and Origin checks, ``api`` the work behind its
JSON routes, ``jobs`` the separation queue, ``kept`` the bounded maps they keep things in,
``errors`` the messages the page sees (no server paths), ``prompts`` the page's free prompts,
``notebook`` the inline mixer, ``static/`` the page (HTML, JS, CSS; served by the package, no CDN).
The routes are listed in the README ("HTTP routes"). Start one with::

    from fastuss_fx.serve import ServeConfig, make_server
    server = make_server(ServeConfig(folder=Path("audio")))
    server.serve_forever()
"""

from fastuss_fx.serve.app import ServeConfig, Server, make_server

__all__ = ["ServeConfig", "Server", "make_server"]
