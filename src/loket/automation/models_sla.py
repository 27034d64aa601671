"""SLA policies' rows (loket.automation.sla); imported by loket.automation.models."""
