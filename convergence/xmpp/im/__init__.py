"""
The IM server of RFC 6121: rosters and subscriptions (L{roster},
L{subscription}), presence (L{presence}) and offline messages
(L{offline}).  Each module subscribes to the router's named events and
declares its spec as a L{convergence.xmpp.features.Feature}.
"""
