"""The WhatsApp Business Cloud API channel (Meta Graph API). See README.md beside this file."""
