"""callmesh: a contact center that runs on Kubernetes.

The ``callmesh`` package is the pure core: resource models (:mod:`callmesh.api`), the ACD
(:mod:`callmesh.acd`), the IVR and pacing engines, the simulator and Erlang staffing. It does
no I/O of its own; the operator (:mod:`callmesh.operator`), the workers
(:mod:`callmesh.workers`) and the plugin manager (:mod:`callmesh.plugins`) are adapters
around it.
"""

__version__ = "0.1.0"


def core_build() -> str:
    """How the routing engine and the simulator run here: ``"compiled (mypyc)"`` in a
    ``CALLMESH_COMPILE=1`` build (see setup.py), ``"pure Python"`` otherwise (the default).
    The benchmarks print it beside their figures."""
    from importlib.machinery import EXTENSION_SUFFIXES

    from callmesh.acd import engine

    compiled = str(engine.__file__).endswith(tuple(EXTENSION_SUFFIXES))
    return "compiled (mypyc)" if compiled else "pure Python"
