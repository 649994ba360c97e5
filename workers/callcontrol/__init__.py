"""The callcontrol worker: runs IVR flows, queues, announces and bridges calls over ESL.

* :mod:`.config`: the tenant's ``tenant.yaml`` (flows compiled once);
* :mod:`.call`: one call's path (IVR -> queue -> agent leg -> record);
* :mod:`.worker`: the process (outbound-socket server, inbound ESL, router channel,
  recovery of waiting calls after a restart).

See ``docs/callflow.md``.
"""
