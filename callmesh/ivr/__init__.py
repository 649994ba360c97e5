"""The IVRFlow engine: graph in, events in, actions out."""
