"""Delivery channels: email (yagmail/SMTP), SMS gateways, file, manual — and a fake."""
