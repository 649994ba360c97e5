"""The outbound pacing engine: preview, progressive, predictive and agentless."""
