"""Twilio Programmable Messaging (SMS, MMS) channel."""
