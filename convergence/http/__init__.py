"""
The HTTP side of the container on twisted.web: servlets mounted at their
application's context path (``servlet``), HTTP sessions kept by cookie and
bound to application sessions (``session``), and the resource tree and site
(``resource``).
"""
