"""The email channel: IMAP (with IDLE) and Loket's own SMTP receiver in, SMTP out."""
