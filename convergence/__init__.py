"""convergence: a converged SIP/XMPP/HTTP application server on Twisted."""

__version__ = "0.1.0"
