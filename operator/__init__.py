"""Control plane: kopf handlers and the pure renderers they apply."""
