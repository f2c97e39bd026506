"""The emulated hub and its test harness."""
