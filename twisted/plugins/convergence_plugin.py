"""twistd plugin: C{twistd convergence}."""

from convergence.plugin import ConvergenceServiceMaker

convergence = ConvergenceServiceMaker()
