"""The public help center: server-rendered pages per workspace (see docs/helpcenter.md)."""
