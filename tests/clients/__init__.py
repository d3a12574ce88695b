"""The client matrix: real XMPP clients against a running server (docs/clients.md).

runner.py is the shared runner; one module per client driver.
"""
