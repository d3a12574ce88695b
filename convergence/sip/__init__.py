"""SIP stack in RFC 3261 layers: URIs and messages (``uri``, ``headers``,
``message``), stream framing (``framing``), transport, transactions,
dialogs, UA core and the servlet API."""
