"""The one door to the operating system: the shared-IP driver and the connectivity prober."""
