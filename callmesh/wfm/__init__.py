"""Workforce management: Erlang C and Erlang A staffing."""
