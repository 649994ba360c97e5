"""FreeSWITCH event socket (ESL): an I/O-free frame parser and an asyncio client and server.

Layers, innermost first:

* :mod:`.events`, :mod:`.frames`, :mod:`.parser`, :mod:`.commands`, :mod:`.backoff`: pure
  (bytes in, typed objects out; no sockets, no clock);
* :mod:`.dispatch`: event fan-out to async handlers and async iterators;
* :mod:`.connection`: the only module that touches sockets: :class:`InboundClient`
  (``auth``, ``api``, ``bgapi``, events, reconnect) and :class:`OutboundServer`, which
  accepts FreeSWITCH's ``socket`` application and hands each call to a handler as a
  :class:`CallSession`.

See ``docs/esl.md``.
"""
