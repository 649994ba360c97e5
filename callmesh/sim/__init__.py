"""The discrete-event simulator that drives the real engines on a simulated clock.

``callmesh simulate`` in library form:

- :mod:`callmesh.sim.workload` -- the workload file (arrivals per interval, handle time and
  patience distributions, IVR menu choices, agent behaviour), validated with the field named;
- :mod:`callmesh.sim.distributions` -- the distributions, compiled to samplers of a
  replication's own ``random.Random``;
- :mod:`callmesh.sim.build` -- manifests to the ACD engine's configuration, shifts to
  login/logout times;
- :mod:`callmesh.sim.simulator` -- :class:`~callmesh.sim.simulator.Simulator`, the event loop
  around the real :class:`callmesh.acd.engine.Router` and :class:`callmesh.ivr.IvrSession`;
- :mod:`callmesh.sim.results` -- KPIs with 95% intervals over replications, Erlang C / A
  beside them (:func:`~callmesh.sim.results.simulate` runs and summarizes);
- :mod:`callmesh.sim.report` -- the self-contained HTML report;
- :mod:`callmesh.sim.mmc` -- M/M/c and M/M/c+M as manifests, for theory checks.

``docs/simulate.md`` defines every KPI; ``simulate-result.schema.json`` is the JSON output.
"""
