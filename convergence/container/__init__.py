"""
The protocol-neutral container: applications, deployment descriptors, the
application router, application sessions and servlet dispatch.
"""

from convergence.container.descriptor import DeploymentDescriptor, LoginConfig

__all__ = ["DeploymentDescriptor", "LoginConfig"]
