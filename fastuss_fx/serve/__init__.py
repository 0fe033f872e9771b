"""``fastuss serve``: a local web app to separate a file and audition its stems in a browser mixer.

``app`` holds the HTTP server, ``api`` the work behind its JSON routes, ``jobs`` the separation
queue, ``prompts`` the page's free prompts, ``notebook`` the inline mixer, ``static/`` the page
(HTML, JS, CSS; served by the package, no CDN). Start one with::

    from fastuss_fx.serve import ServeConfig, make_server
    server = make_server(ServeConfig(folder=Path("audio")))
    server.serve_forever()
"""

from fastuss_fx.serve.app import ServeConfig, Server, make_server

__all__ = ["ServeConfig", "Server", "make_server"]
