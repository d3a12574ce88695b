"""
What convergence implements, generated from its declarations: the table of
RFCs and XEPs in C{docs/compliance.md}, the DOAP file of XEP-0453 in
C{docs/convergence.doap}, and the XEP-0479 compliance suite requirements
met or missing.  C{python -m convergence.compliance} (C{make compliance})
writes both files; a test checks that the committed ones are current.
"""
