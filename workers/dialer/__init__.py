"""The dialer worker: a tenant's DialerCampaigns (:mod:`callmesh.dialer`) dialled over ESL.

:mod:`~callmesh.workers.dialer.config` reads the rendered ``tenant.yaml`` and the contact
and do-not-call lists the operator mounts; :mod:`~callmesh.workers.dialer.calls` turns the
engine's effects into FreeSWITCH commands and originate results into outcomes (pure);
:mod:`~callmesh.workers.dialer.worker` runs the campaigns on an inbound ESL connection and
follows the target queues' agents through the router. See ``docs/dialer.md``.
"""
