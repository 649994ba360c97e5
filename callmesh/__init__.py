"""callmesh: a contact center that runs on Kubernetes.

The ``callmesh`` package is the pure core: resource models (:mod:`callmesh.api`), the ACD
(:mod:`callmesh.acd`), the IVR and pacing engines, the simulator and Erlang staffing. It does
no I/O of its own; the operator (:mod:`callmesh.operator`), the workers
(:mod:`callmesh.workers`) and the plugin manager (:mod:`callmesh.plugins`) are adapters
around it.
"""

__version__ = "0.1.0"
