"""Facebook Messenger (a Facebook Page's conversations); see README.md."""
