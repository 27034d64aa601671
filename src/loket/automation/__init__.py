"""Automation: canned replies, auto-assignment, and (to come) rules, macros and SLA policies."""
