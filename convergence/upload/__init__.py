"""
HTTP file upload (XEP-0363), protocol-neutral: signed slots, the files in
the data directory, quotas and expiry.  The XMPP side
(L{convergence.xmpp.features.http_upload}) hands out slots, the HTTP side
(L{convergence.http.upload}) takes the PUT and serves the GET.
"""
