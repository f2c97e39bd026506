"""Firmware version: one place."""
FW_VERSION = (0, 1, 0)
