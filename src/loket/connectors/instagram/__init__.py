"""Instagram direct messages (Messenger API for Instagram); see README.md."""
