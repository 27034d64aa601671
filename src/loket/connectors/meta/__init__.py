"""What WhatsApp, Messenger and Instagram share: Meta's webhook handshake and signature, and the
Graph API client with its errors in plain words."""
