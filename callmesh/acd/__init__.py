"""The ACD: queues, agents, offers, tiers and escalation, as a pure engine."""
