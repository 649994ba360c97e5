"""The discrete-event simulator that drives the real engines on a simulated clock."""
